<?php

// routes/api.php (Laravel 11+: create it with `php artisan install:api`).
// API routes carry no CSRF check, which a server-to-server POST could not
// pass. With the default "api" prefix the URL is /api/gateway/events:
//
//   gateway:
//     webhook: { url: "http://127.0.0.1:8000/api/gateway/events", secret_env: "WSSGATE_WEBHOOK_SECRET" }

use App\Http\Controllers\GatewayEventsController;
use Illuminate\Support\Facades\Route;

Route::post('/gateway/events', [GatewayEventsController::class, 'handle']);
