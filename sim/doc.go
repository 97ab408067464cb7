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
// while it listens); GotDTMF data leaves out the terminator; Disconnect
// after <hangup/> carries process=none.
//
// # Sessions
//
// Each call has its own cookie jar (net/http/cookiejar), used for every
// request to the app: NewCall, follow-ups, redirects, the app a <gotourl>
// moves to, and the final Hangup or Disconnect. Cookies keep to the host
// that set them (RFC 6265), and a new call starts with an empty jar. The
// official PHP samples keep their state in the PHP session cookie
// (session_start()), as KooKoo evidently sends it back.
//
// # Tolerant reading
//
// Responses are read as the platform reads them
// ([kookoo.ParseResponseTolerant], whose doc lists each tolerance and its
// evidence): an attribute value KooKoo could not use (silence="wav" from
// the PHP library's addRecord('filename2','wav','120'), a non-numeric
// maxduration, speed="12", format="ogg"), an undocumented attribute, stray
// text or tags fall back to KooKoo's default or are skipped, and the call
// goes on. Each is shown as a "warning" event (the page, `koel call`) and
// logged, naming the tag, the attribute, the value and the default used,
// e.g. `<record> silence="wav" is not an integer; KooKoo's default 4 is
// used`. Only a body that is not KooKoo XML at all (not well-formed, not
// <response>, over the size cap) ends the call, with the error
// prompt. An offer with "strict": true (`koel call --strict`) ends the
// call instead on any warning and on anything kookoo's Validate refuses.
//
// # The end of a call
//
// A response whose verbs leave nothing to do (empty <response/>, or only
// tags the emulator skips) ends the call, as KooKoo ends it: the app gets
// event=Disconnect with process=none and total_call_duration, and the
// caller's UI shows "the app returned no further verbs; the call ends"
// (not the error prompt). A response with play tags and no input tag is
// played and followed by the follow-up request with no event (§3.1), so
// the PHP samples' "Playback dynamic text" plays its three prompts, gets
// <response/> for the follow-up and ends. With filler="yes" an empty
// response is requested again instead (KooKoo "will first do all the tasks
// … and then it will make a Get request", DOC-TUNES); demo.php relies on it
// for its dial menu. Three such empty filler responses in a row fail the
// call.
//
// # Simulated outcomes
//
// There is no far end. <dial> rings for Config.DialRingTime (default 2 s),
// then reports the offer's dial_outcome (answered, not_answered or busy;
// default Config.DialOutcome, not_answered; busy is not in KooKoo's
// documentation, which lists answered and not_answered): event=Dial with
// status, callduration (an answered dial talks for dial_duration seconds,
// capped by limittime) and data -1, or with record="true" on an answered
// dial the URL of a silent recording that long. The caller hanging up
// meanwhile sends Hangup with process=dial and the dial's data and status.
// <conference> holds the caller until they press # (event=Conference,
// callduration = seconds in the conference), or for conference_duration
// seconds when the offer sets it; hanging up sends Hangup with
// process=conference.
//
// # Fast path
//
// When the app is koel's own connection and a speech-to-text engine is
// configured, the caller's audio is transcribed while it is recorded; the
// transcript is ready when the end-pointer fires and koel's KooKoo app takes
// it through [Sim.LookupTranscript] instead of downloading the recording.
// The recording's audio stays in the sim's memory, and koel's voice service
// reads it through [Sim.LookupRecordingPCM] when it decodes a reply again
// with a closed vocabulary (a confirmation's yes or no, a spoken order
// number): still nothing is downloaded.
//
// # HTTP
//
// POST /sim/offer takes application/json
//
//	{"sdp": "<complete offer>", "type": "offer",
//	 "connection": "demo" | "app_url": "https://…",
//	 "silence_period": 2, "max_record_time": 10, "caller": "9876543210",
//	 "strict": false, "dial_outcome": "answered", "dial_duration": 20,
//	 "conference_duration": 0}
//
// or, for the echo app, {"sdp": "…", "echo": true}: no KooKoo app, the
// caller's 20 ms frames are played back through the call's pacer (koel
// load echo measures the media path with it). At most Config.MaxHandshakes
// offers negotiate at once, from the offer to the media connected (ICE and
// DTLS); the others wait for a slot (koel_sim_handshakes_queued_total, an
// info log) and get 503 after 15 s, so a burst of new calls does not take
// the CPU from the media of the calls in progress.
//
// and answers {"sdp", "type": "answer", "call_id", "sid"}, or
// {"error_message": "…"} with 400 (malformed SDP, no PCMU audio, bad
// settings, a URL the policy refuses), 401 (no valid token outside
// development mode), 404 (an unknown connection, checked before a slot is
// taken), 415 (not JSON), 429 (over the client's offer rate) or 503 (the
// call cap, draining, or shut down). silence_period and max_record_time,
// when set, override every <record>'s silence and maxduration. Recordings
// are served at GET /sim/recordings/{id}.wav; the page is GET /sim/.
//
// In development mode (Config.Open) offers need nothing more. Otherwise
// each needs "Authorization: Bearer <Config.Token>" or a link token, and
// each client address may make Config.OffersPerMinute offers (default 10
// a minute, bursts of 5). GET /sim/link?connection=ID[&ttl=15m] with the
// sim token answers {"url", "token", "expires_at"}: a page URL whose token
// (HMAC-SHA256, at most 24 hours) lets its holder call that connection
// only. Tokens are compared in constant time. [Sim.Drain] refuses new
// calls with 503 while the calls in progress go on.
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
