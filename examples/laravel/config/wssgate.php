<?php

// config/wssgate.php: where the gateway's push API is and the secrets
// shared with it. Keep the secrets in .env, not in this file.

return [
    // wssgate's gateway.push_api.listen, as a URL.
    'push_url' => env('WSSGATE_PUSH_URL', 'http://127.0.0.1:9181'),
    // gateway.push_api.secret (or the content of its secret_file).
    'push_secret' => env('WSSGATE_PUSH_SECRET'),
    // gateway.webhook.secret: signs the events wssgate POSTs here.
    'webhook_secret' => env('WSSGATE_WEBHOOK_SECRET'),
];
