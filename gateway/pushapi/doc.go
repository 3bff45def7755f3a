// Package pushapi is the gateway's push API: GatewayWorker's
// GatewayClient role over HTTP and JSON, so that another application (a
// Laravel job, a cron script, a Django view) can push to connected
// clients and query the hub.
//
// A [Server] is an http.Handler. Each hub method is one endpoint, named
// as in GatewayWorker:
//
//	POST /api/sendToAll        {"data":"hello"}
//	POST /api/sendToUid        {"uid":"42","data":{"type":"notice","text":"paid"}}
//	POST /api/joinGroup        {"client_id":"7f0000010b5600000001","group":"room1"}
//	POST /api/getClientIdByUid {"uid":"42"}
//	POST /api/batch            {"calls":[{"method":"sendToAll","data":"a"},{"method":"getAllClientIdCount"}]}
//
// The body is a JSON object with named fields (data, client_id,
// client_ids, uid, uids, group, groups, exclude, session), decoded into
// a [gateway.Call]; unknown fields are refused, so a typo is an error
// rather than a silently missing argument. A "data" string is sent as
// its text and any other JSON value as its JSON encoding. Methods
// without arguments accept an empty body.
//
// Every request carries "Authorization: Bearer <secret>". The token is
// compared with the secret in constant time, on SHA-256 digests so that
// neither the content nor the length of the secret leaks through
// timing.
//
// Answers are JSON:
//
//	200 {"ok":true}                  the method returns nothing (sendToClient, setSession, ...)
//	200 {"result":...}               anything else; lists are [] rather than null
//	400 {"error":"..."}              bad JSON, unknown field, missing argument (named)
//	401 {"error":"unauthorized"}     no or wrong token (with WWW-Authenticate: Bearer)
//	404 {"error":"..."}              unknown method, or unknown client id where one is needed
//	405 {"error":"..."}              not POST (with Allow: POST)
//	413 {"error":"..."}              body over MaxBytes
//	415 {"error":"..."}              a Content-Type that is not JSON (none at all is fine)
//
// The batch endpoint runs every call in order, even after one failed,
// and answers 200 with one entry per call: {"ok":true}, {"result":...}
// or {"error":"...","status":404}. Only a batch that cannot be read at
// all (bad JSON, no "calls", too many calls) fails as a whole.
//
// The push API can do anything to any client: serve it on a loopback or
// private listener only (see [Server.Serve]), and keep the secret out of
// the config file where possible.
package pushapi
