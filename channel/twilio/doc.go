// Package twilio holds the pure building blocks shared by Switchboard's
// Twilio channels (SMS/MMS and voicemail): webhook signature validation
// (X-Twilio-Signature), the public URL a webhook is validated against, and a
// small client for the Messages API, for fetching inbound media, and for
// the admin's setup: listing the account's phone numbers and Messaging
// Services and pointing a number's webhooks at this deployment.
//
// Nothing here touches the store or the queue; HTTP handlers compose these
// pieces. The package keeps no mutable package-level state, so everything is
// safe for concurrent use (a Client as much as its *http.Client is).
//
// References: https://www.twilio.com/docs/usage/webhooks/webhooks-security
// and https://www.twilio.com/docs/messaging/api/message-resource (see also
// shared/research/channels.md §0-§1).
package twilio
