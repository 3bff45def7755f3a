<?php
/**
 * The BusinessWorker processes of the chat, unchanged from a
 * GatewayWorker 4.0 app: wssgate (config.yaml beside this file) is the
 * Gateway and the Register they connect to.
 *
 *   composer require workerman/gateway-worker
 *   export GATEWAYWORKER_SECRET=change-me    # the same as wssgate's secret_key_env
 *   php start_businessworker.php start       # add -d to run as a daemon
 */

use GatewayWorker\BusinessWorker;
use Workerman\Worker;

require_once __DIR__ . '/vendor/autoload.php';
require_once __DIR__ . '/Events.php';

$worker = new BusinessWorker();
$worker->name = 'ChatBusinessWorker';
$worker->count = 4;
// wssgate's gateway.gatewayworker.register_listen.
$worker->registerAddress = getenv('REGISTER_ADDRESS') ?: '127.0.0.1:1238';
// wssgate's gateway.gatewayworker.secret_key (or _file, _env).
$worker->secretKey = getenv('GATEWAYWORKER_SECRET') ?: '';
$worker->eventHandler = 'Events';

if (!defined('GLOBAL_START')) {
    Worker::runAll();
}
