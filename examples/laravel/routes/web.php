<?php

// routes/web.php: the page asks for a WebSocket ticket with the user's
// session; the ticket then identifies the user in websocket_connect.

use App\Http\Controllers\GatewayEventsController;
use Illuminate\Support\Facades\Route;

Route::get('/ws-ticket', [GatewayEventsController::class, 'ticket'])->middleware('auth');
