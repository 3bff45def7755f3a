// Package gatewayworker speaks GatewayWorker's internal protocols, so
// that unchanged PHP BusinessWorkers and GatewayClient work against
// wssgate (GatewayWorker 4.0, GatewayClient 3.1, workerman 5.2; the
// reference is testdata/PROTOCOL.md and the captured vectors beside it).
//
// It provides:
//
//   - the GatewayProtocol packet ([Packet], [Decode], [Reader]): a
//     28-byte big-endian header, ext_data and body, with the command
//     codes ([Cmd]) and flags ([FlagBodyIsScalar], [FlagNotCallEncode]),
//     and the 10 MiB maximum packet size of workerman;
//   - the reply framing of query commands ([AppendReply], [ReadReply]):
//     a uint32 length and PHP serialize() output;
//   - the Register's text lines ([AppendGatewayConnect],
//     [AppendWorkerConnect], [AppendBroadcastAddresses], [AppendPing],
//     [ParseRegisterLine]);
//   - client ids ([ClientID]): the Gateway's inner address and the
//     connection id, as 20 hex digits;
//   - PHP serialize ([Serialize], [Unserialize], [Array]) with
//     array_replace_recursive ([ReplaceRecursive], [UpdateSession]) and
//     conversion to and from JSON ([ToJSON], [FromJSON],
//     [SessionToJSON], [SessionFromJSON]), and the hub's session codec
//     ([PHPSessionCodec]), which keeps sessions in PHP's form;
//   - the events a Gateway sends a BusinessWorker ([EventHeader],
//     [Handshake]);
//   - a Register service ([Register]) and a Register client that keeps
//     a Gateway registered with another Register ([RegisterClient]);
//   - a Gateway's inner side ([Inner]): the listener BusinessWorkers and
//     GatewayClient connect to, running their commands on the hub
//     ([Hub], which *gateway.Hub satisfies; it keeps the sessions), and
//     the gateway.Handler that turns the hub's client events into events
//     for the BusinessWorkers.
//
// Decoders never panic on hostile input: they return a [*PacketError]
// or [*SyntaxError] wrapping one of the package's sentinel errors.
package gatewayworker
