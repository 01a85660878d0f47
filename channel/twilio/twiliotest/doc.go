// Package twiliotest is a local stand-in for Twilio Messaging that follows
// the documented wire formats (shared/research/channels.md §0-§1), for tests
// and for `switchboard demo`, where no machine can reach Twilio.
//
// A Server plays both directions:
//
//   - the REST API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json
//     (Basic auth, Twilio's validation and error JSON, a 201 message
//     resource), GET/DELETE of inbound media at
//     /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}
//     and of call recordings (AddRecording) at
//     /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid};
//   - the account's phone numbers (WithPhoneNumbers, Number): GET
//     /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json, paged by
//     PageSize and Page with next_page_uri, and GET/POST (fetch, update
//     webhooks) of .../IncomingPhoneNumbers/{Sid}.json, with Twilio's
//     21402, 21403, 21502 and 20404 errors;
//   - the Messaging API's GET /v1/Services (WithMessagingService), paged
//     with meta.next_page_url, on the same host (a twilio.Client with
//     BaseURL set to the stand-in uses it for both APIs);
//   - Twilio's webhooks: signed status callbacks after each send, and
//     signed inbound SMS/MMS webhooks sent on demand with SendInbound.
//
// Serve Handler with httptest.NewTLSServer (or any listener) and point
// twilio.Client.BaseURL at it. Call SetBaseURL with the address the server
// is reachable at, so that inbound MediaUrlN and RecordingUrl point back at
// it (Switchboard fetches media from its configured API only): the inbound
// parser (sms.ParseInbound) accepts https media URLs only, so serve over TLS
// when inbound media is parsed.
//
// Behaviour is shaped by Options (unsubscribed and undeliverable numbers,
// transient failures, status sequences, shuffled callbacks). Like Twilio,
// an inbound STOP (or another opt-out keyword) blocks later sends to that
// number with 21610 and START lifts the block.
//
// A Server is safe for concurrent use. Close it to wait for its status
// callbacks.
package twiliotest
