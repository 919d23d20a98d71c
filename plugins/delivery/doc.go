// Package delivery groups the plugins that deliver the gateway's messages
// (security codes and notices by text message, voice call or email). Each
// subpackage implements notify.Sender:
//
//   - outbox appends every message as a JSON line to a file, for the demo,
//     tests and development;
//   - webhook POSTs every message, signed, to an HTTPS endpoint of the
//     operator's own;
//   - twilio sends text messages and places voice calls through a
//     Twilio-compatible REST API;
//   - smtp sends email through a mail server, over TLS.
//
// The gateway writes every text; a plugin only delivers it. No plugin logs
// a message's text (it carries codes) or its full destination, and no
// error a plugin returns contains either.
package delivery
