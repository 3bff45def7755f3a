<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use Illuminate\Support\Facades\Http;
use RuntimeException;

/**
 * Pushes a message to every browser (every connected client) of a user
 * through wssgate's push API: POST /api/sendToUid with a bearer token.
 *
 *     SendToUid::dispatch((string) $order->user_id, ['type' => 'order.paid', 'id' => $order->id]);
 *
 * $data may be a string (sent as it is) or an array (sent as its JSON
 * encoding, which the page JSON.parse()s). The job is retried by the
 * queue worker when the gateway cannot be reached (Http throws a
 * ConnectionException) or answers 5xx; a 4xx
 * answer (bad secret, bad arguments) fails it at once, since a retry
 * would get the same answer.
 */
class SendToUid implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels;

    /** How many times the queue worker tries the job. */
    public int $tries = 5;

    /** Seconds to wait before each retry. */
    public array $backoff = [1, 5, 15, 60];

    public function __construct(
        public string $uid,
        public string|array $data,
    ) {
    }

    public function handle(): void
    {
        $response = Http::baseUrl(config('wssgate.push_url'))
            ->withToken(config('wssgate.push_secret'))
            ->acceptJson()
            ->asJson()
            ->connectTimeout(3)
            ->timeout(10)
            ->post('/api/sendToUid', [
                'uid' => $this->uid,
                'data' => $this->data,
            ]);

        if ($response->serverError()) {
            // Let the queue retry with $backoff.
            throw new RuntimeException('wssgate push API: '.$response->status().' '.$response->json('error', ''));
        }
        if ($response->clientError()) {
            // Retrying cannot help: fail the job for good.
            $this->fail(new RuntimeException('wssgate push API: '.$response->status().' '.$response->json('error', '')));

            return;
        }

        // {"result": n}: how many connections the message was queued for;
        // 0 means the user has no browser open right now.
        logger()->debug('pushed to uid', ['uid' => $this->uid, 'clients' => $response->json('result')]);
    }
}
