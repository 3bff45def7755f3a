<?php
/**
 * Push to the chat from any PHP program with GatewayClient, as a Laravel
 * or ThinkPHP app does; nothing changes when wssgate is the Gateway.
 *
 *   composer require workerman/gatewayclient
 *   php push.php 'hello from PHP'
 */

use GatewayClient\Gateway;

require_once __DIR__ . '/vendor/autoload.php';

Gateway::$registerAddress = getenv('REGISTER_ADDRESS') ?: '127.0.0.1:1238';
Gateway::$secretKey = getenv('GATEWAYWORKER_SECRET') ?: '';

Gateway::sendToAll($argv[1] ?? 'hello from GatewayClient');
echo Gateway::getAllClientIdCount(), " clients online\n";
