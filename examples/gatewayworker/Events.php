<?php
/**
 * The seed's chat as GatewayWorker events, for a PHP BusinessWorker
 * (GatewayWorker 4.0) run by start_businessworker.php beside this file.
 *
 * Line for line what wssgate's built-in chat (gateway.events: chat) and
 * the Go BusinessWorker in chatworker/ do: the newcomer gets
 * "Hello <client_id>" and "online <id> <id> ..." (the clients connected
 * before it), everyone gets "<client_id> login", each message becomes
 * "<client_id> said <text>" to everyone, and "<client_id> logout"
 * follows a departure. wssgate's chat page at https://localhost:8443/
 * and `telnet 127.0.0.1 8282` both speak it.
 */

use GatewayWorker\Lib\Gateway;

class Events
{
    /**
     * A client connected: greet it, list who is there, tell everyone.
     *
     * @param string $client_id 20 hex digits: the gateway's lan_ip, its
     *                          inner port and the connection's number
     */
    public static function onConnect($client_id)
    {
        Gateway::sendToClient($client_id, "Hello $client_id");
        $others = array_diff(Gateway::getAllClientIdList(), [$client_id]);
        Gateway::sendToClient($client_id, rtrim('online ' . implode(' ', $others)));
        Gateway::sendToAll("$client_id login");
    }

    /**
     * A WebSocket client finished its handshake. $data['get'],
     * $data['server'] and $data['cookie'] describe the upgrade request;
     * behind wssgate, $data['server']['REMOTE_ADDR'] (and
     * $_SERVER['REMOTE_ADDR'] in every event) is the client's real
     * address, with no X-Real-IP to read. The chat needs none of it.
     *
     * @param string $client_id
     * @param array  $data
     */
    public static function onWebSocketConnect($client_id, $data)
    {
    }

    /**
     * A message: repeat it to everyone. Answers to the heartbeat
     * (gateway.ping_data; the chat page answers {"type":"pong"}) are not
     * repeated.
     *
     * @param string $client_id
     * @param string $message
     */
    public static function onMessage($client_id, $message)
    {
        if ($message === '' || $message === '{"type":"pong"}') {
            return;
        }
        Gateway::sendToAll("$client_id said $message");
    }

    /**
     * A client left.
     *
     * @param string $client_id
     */
    public static function onClose($client_id)
    {
        Gateway::sendToAll("$client_id logout");
    }
}
