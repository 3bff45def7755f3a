<?php

namespace App\Http\Controllers;

use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Http\Response;
use Illuminate\Support\Facades\Cache;
use Illuminate\Support\Str;

/**
 * The business worker of a wssgate gateway: wssgate POSTs every client
 * event (connect, websocket_connect, message, close) here as signed JSON,
 * and the answer's "actions" are run on the gateway in order.
 *
 * Events of one client arrive one at a time and in order; the next one
 * waits for this answer, so answer quickly (dispatch slow work to a
 * queue and push the result later with the SendToUid job). wssgate
 * retries on a network error or a 5xx, so an event may arrive twice.
 */
class GatewayEventsController extends Controller
{
    /** POST /api/gateway/events (see routes/api.php). */
    public function handle(Request $request): JsonResponse|Response
    {
        // The signature covers the raw body: check it before decoding.
        $raw = $request->getContent();
        $secret = (string) config('wssgate.webhook_secret');
        $expected = 'sha256='.hash_hmac('sha256', $raw, $secret);
        $given = (string) $request->header('X-Wssgate-Signature', '');
        if ($secret === '' || ! hash_equals($expected, $given)) {
            // 4xx: wssgate logs it and does not retry.
            return response()->json(['error' => 'bad signature'], 401);
        }

        $event = json_decode($raw, true);
        if (! is_array($event) || ! isset($event['event'], $event['client_id'])) {
            return response()->json(['error' => 'bad event'], 400);
        }

        $actions = match ($event['event']) {
            'websocket_connect' => $this->onWebSocketConnect($event),
            'message' => $this->onMessage($event),
            'close' => $this->onClose($event),
            default => [], // "connect" comes first for every client; nothing to do yet
        };

        if ($actions === []) {
            return response()->noContent(); // 204: no actions
        }

        return response()->json(['actions' => $actions]);
    }

    /**
     * GET /ws-ticket (web, authenticated): a one-time ticket the page puts
     * in the WebSocket URL, wss://chat.example.com/wss?ticket=..., so that
     * the gateway's websocket_connect event tells who the user is.
     */
    public function ticket(Request $request): JsonResponse
    {
        $ticket = Str::random(40);
        Cache::put('ws-ticket:'.$ticket, (string) $request->user()->getAuthIdentifier(), now()->addMinute());

        return response()->json(['ticket' => $ticket]);
    }

    /** Binds the client to its user and puts it in the user's rooms. */
    private function onWebSocketConnect(array $event): array
    {
        $ticket = $event['query']['ticket'][0] ?? null;
        $uid = is_string($ticket) ? Cache::pull('ws-ticket:'.$ticket) : null;
        if ($uid === null) {
            // Unknown user: say so and close the connection. An action
            // without client_id applies to the event's client.
            return [
                ['method' => 'closeClient', 'data' => ['type' => 'error', 'text' => 'not logged in']],
            ];
        }

        return [
            ['method' => 'bindUid', 'uid' => $uid],
            ['method' => 'setSession', 'session' => ['uid' => $uid, 'since' => $event['time']]],
            ['method' => 'joinGroup', 'group' => 'lobby'],
            ['method' => 'reply', 'data' => ['type' => 'welcome', 'client_id' => $event['client_id']]],
            ['method' => 'sendToGroup', 'group' => 'lobby', 'exclude' => [$event['client_id']],
                'data' => ['type' => 'online', 'uid' => $uid]],
        ];
    }

    /**
     * A message from the page: {"type":"join","room":"r1"} or
     * {"type":"say","room":"r1","text":"hello"}.
     */
    private function onMessage(array $event): array
    {
        $uid = $event['uid'] ?? null; // bound at websocket_connect
        $msg = json_decode($event['data'] ?? '', true);
        if ($uid === null || ! is_array($msg)) {
            return [['method' => 'reply', 'data' => ['type' => 'error', 'text' => 'bad message']]];
        }
        $room = 'room.'.preg_replace('/[^A-Za-z0-9_-]/', '', (string) ($msg['room'] ?? ''));

        return match ($msg['type'] ?? null) {
            'pong' => [], // the answer to the gateway's ping_data
            'join' => [
                ['method' => 'joinGroup', 'group' => $room],
                ['method' => 'sendToGroup', 'group' => $room, 'data' => ['type' => 'joined', 'room' => $room, 'uid' => $uid]],
            ],
            'say' => [
                ['method' => 'sendToGroup', 'group' => $room,
                    'data' => ['type' => 'said', 'room' => $room, 'uid' => $uid, 'text' => (string) ($msg['text'] ?? '')]],
            ],
            default => [['method' => 'reply', 'data' => ['type' => 'error', 'text' => 'unknown type']]],
        };
    }

    /** A connection has gone: tell the lobby whose it was. */
    private function onClose(array $event): array
    {
        $uid = $event['uid'] ?? null; // the client's last uid binding
        if ($uid === null) {
            return [];
        }

        // A user with several tabs has several clients: the page keeps a
        // count per uid. The gone client itself cannot be reached any more.
        return [
            ['method' => 'sendToGroup', 'group' => 'lobby',
                'data' => ['type' => 'offline', 'uid' => $uid, 'client_id' => $event['client_id']]],
        ];
    }
}
