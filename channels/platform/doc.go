// Package platform is what koel's text-platform adapters share: the inbound
// pipeline (find the connection, read the body under a cap, validate, run
// each message through the engine, store the platform-shaped replies as
// outbox items in the same transaction), the outbound HTTP client the
// senders use (SSRF-safe dialing, errors classified as retryable or final,
// Retry-After honoured), a per-key rate limiter and the channel metrics.
//
// Each adapter (channels/messenger, channels/twilio, …) stays thin: it
// verifies the platform's signature or token, parses the platform's payload
// into [Message] values, and renders replies in the platform's shape; the
// rest is here.
//
// # Metrics
//
//   - koel_channel_messages_total{channel,direction}: inbound messages
//     accepted (direction "inbound") and replies the platform accepted
//     (direction "outbound").
//   - koel_channel_delivery_seconds{channel}: time from a reply being stored
//     to the platform accepting it, retries included.
//   - koel_channel_delivery_failures_total{channel,class}: send attempts the
//     platform refused or that failed, by class (rate_limited, server,
//     client, auth, network).
//   - koel_channel_rejected_total{channel,reason}: inbound requests refused
//     before anything was stored (signature, malformed, too_large,
//     not_found).
//
// The outbox's own koel_outbox_attempts_total{result} counts every attempt
// of every channel; these add the channel and the failure class.
package platform
