// Package sim is koel's softphone: a WebRTC media leg, a KooKoo emulator
// that executes KooKoo verbs against it, a browser page and a command-line
// client.
//
// # Media leg
//
// A caller (the page at /sim/ or [RunCLI]) sends a non-trickle SDP offer to
// POST /sim/offer. The [Sim] answers with a pion/webrtc peer that negotiates
// only PCMU/8000 and telephone-event/8000 over host candidates, sends the
// bot's audio as 20 ms PCMU frames paced by a ticker, and receives the
// caller's audio and RFC 4733 DTMF events. Events for the caller's user
// interface (what the bot said, what the caller said, per-turn figures) go
// over a DataChannel labelled "koel" that the offerer creates.
//
// # Emulator
//
// Each call dials a KooKoo app, either koel's own router in process
// (/kookoo/{connection}) or any app URL, with event=NewCall and realistic
// sid, cid and called_number, and executes the returned verbs as
// KooKoo's documentation describes them (see the kookoo package): play tags in order, then the
// request that the last tag implies (Record, GotDTMF, Dial, Disconnect, or a
// follow-up request with no event after a play-only response). The caller
// hanging up sends event=Hangup with process set to the running tag.
//
// Where the spec is silent the emulator chooses: a key pressed during the
// prompts of a <collectdtmf> stops them and counts (barge-in); during a
// <record>, the record's terminator (termchar, default #) ends it with
// event=Record status=dtmf, and any other key ends it and is reported as
// event=GotDTMF data={key} (koel's own app offers "press 0 for an agent"
// while it listens); GotDTMF data leaves out the terminator; <dial> ends at
// once with the configured outcome (data=-1, callduration=0); Disconnect
// after <hangup/> carries process=none.
//
// # Fast path
//
// When the app is koel's own connection and a speech-to-text engine is
// configured, the caller's audio is transcribed while it is recorded; the
// transcript is ready when the end-pointer fires and koel's KooKoo app takes
// it through [Sim.LookupTranscript] instead of downloading the recording.
//
// # HTTP
//
// POST /sim/offer takes application/json
//
//	{"sdp": "<complete offer>", "type": "offer",
//	 "connection": "demo" | "app_url": "https://…",
//	 "silence_period": 2, "max_record_time": 10, "caller": "9876543210"}
//
// and answers {"sdp", "type": "answer", "call_id", "sid"}, or
// {"error": "…"} with 400 (malformed SDP, no PCMU audio, bad settings, a URL
// the policy refuses), 415 (not JSON) or 503 (the call cap, or shutting
// down). silence_period and max_record_time, when set, override every
// <record>'s silence and maxduration. Recordings are served at
// GET /sim/recordings/{id}.wav; the page is GET /sim/.
//
// # Events
//
// The offerer creates a DataChannel labelled "koel". The sim sends one
// JSON [Event] per message (what the bot says, the caller's partial and
// final transcript, each KooKoo request, per-turn figures, the end of the
// call); the caller may send {"type":"hangup"} and
// {"type":"dtmf","digits":"12#"} (keys that cannot travel as RFC 4733
// events).
//
// # Timing
//
// Outgoing frames are paced by a ticker from when the media connects; a
// frame that leaves more than 40 ms after its slot counts as late
// (koel_sim_frames_late_total, and per call in the hangup event). The
// end-pointer counts samples, so its decisions do not depend on scheduling.
// To have the transcript ready when the end-pointer fires, the stream is
// finished once the caller has been silent for 300 ms (or half the silence
// period) and restarted if the caller goes on; replies are synthesized
// clause by clause so the first frame leaves after the first clause.
//
// One goroutine owns each call's state; pion callbacks become channel sends.
package sim
