// Package sms holds the pure parts of the SMS/MMS channel (Twilio
// Messaging, channels.md §1): reading inbound and status-callback webhooks
// into Switchboard's types, Twilio's opt-out keywords, and GSM 03.38
// segment counting for the composer and the send policy.
//
// Signature checking lives in package twilio and must happen before any of
// these parsers see a form. Nothing here does I/O or keeps mutable
// package-level state.
package sms
