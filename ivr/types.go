// Package ivr is koel's core: the domain types every channel shares, the
// [Engine] that runs one turn of any conversation, and the voice call state
// machine that KooKoo and the softphone drive.
//
// Package ivr knows nothing about HTTP formats, KooKoo XML or codecs; channels
// translate their platform's payloads into an [Inbound] and deliver the
// [Reply] back.
package ivr

import (
	"time"
)

// Channel names a platform a [Connection] serves. The value is also the first
// path segment of the connection's callback URL where the seeds define one
// (kookoo/<identifier>, fb/<identifier>, whatsapp/<identifier>, jio/<identifier>).
type Channel string

// Channels koel knows about.
const (
	ChannelKooKoo   Channel = "kookoo"
	ChannelWebhook  Channel = "webhook"
	ChannelAPI      Channel = "api" // the synchronous bot API (POST /api/bots/{id}/converse)
	ChannelSim      Channel = "sim" // the softphone's in-process calls
	ChannelFacebook Channel = "fb"
	ChannelWhatsApp Channel = "whatsapp"
	ChannelJio      Channel = "jio"
	ChannelWebchat  Channel = "webchat"
	// ChannelMetaWhatsApp is the WhatsApp Cloud API (Meta) at wa/<identifier>;
	// ChannelWhatsApp is Twilio's WhatsApp.
	ChannelMetaWhatsApp Channel = "wa"
	ChannelInfobip      Channel = "infobip"
	ChannelGupshup      Channel = "gupshup"
	ChannelKarix        Channel = "karix"
)

// Business is one bot: its FAQ, its API token and its connections.
type Business struct {
	ID   int64
	Name string
	// TokenHash is the SHA-256 of the business API token. The token itself is
	// never stored; compare with [TokenMatches].
	TokenHash []byte
	// ClientID is the value integrators send in the client-id header.
	ClientID string
	// FallbackMessage is the bot's answer when nothing matches.
	FallbackMessage string
	// FAQVersion increases every time the FAQ is replaced; caches of the
	// matcher and the speech vocabulary key on it.
	FAQVersion int64
	Active     bool
	// Bot is the kind of bot that answers this business; empty means the
	// server's default (bot.kind in the configuration).
	Bot BotKind
	// BotURL is the remote bot's REST webhook when Bot is BotRemote. It may
	// carry a token in its query, so it is a Secret: never logged.
	BotURL    Secret
	CreatedAt time.Time
}

// BotKind names a kind of bot.
type BotKind string

// Kinds of bot a business can have.
const (
	BotDefault BotKind = ""       // the server's default
	BotFAQ     BotKind = "faq"    // koel's FAQ matcher on the business's FAQ
	BotRemote  BotKind = "remote" // a Rasa-compatible REST bot at BotURL
)

// Connection binds a business to one platform under an identifier, with the
// platform's settings and credentials.
type Connection struct {
	ID         int64
	BusinessID int64
	Channel    Channel
	// Identifier is the last path segment of the callback URL ("demo" for the
	// demo business's connections). Unique per channel.
	Identifier string
	Active     bool
	Settings   ConnectionSettings
	CreatedAt  time.Time
}

// ConnectionSettings holds a connection's settings: the voice and webhook
// settings at the top level, and each text channel's credentials and
// settings in a typed section of its own (Messenger, Twilio, ...); each
// channel reads its section.
//
// Fields of type [Secret] are credentials. They are write-only: a Secret
// prints, logs and marshals as "***", [ConnectionSettings.MarshalPublicJSON]
// (the API view) omits them, and only [EncodeSettings] (the store) and
// [Secret.Reveal] (a channel at request or send time) see the value.
type ConnectionSettings struct {
	// Voice (KooKoo, softphone).
	WelcomeMessage string `json:"welcome_message,omitempty" yaml:"welcome_message"`
	BreakMessage   string `json:"break_message,omitempty" yaml:"break_message"`
	GoodbyeMessage string `json:"goodbye_message,omitempty" yaml:"goodbye_message"`
	RepromptText   string `json:"reprompt_message,omitempty" yaml:"reprompt_message"`
	// SilencePeriod is seconds of silence after speech that end a message.
	SilencePeriod int `json:"silence_period,omitempty" yaml:"silence_period"`
	// MaxRecordTime is the longest recording in seconds.
	MaxRecordTime int `json:"max_record_time,omitempty" yaml:"max_record_time"`
	// MaxFailures is how many consecutive failures or no-inputs end a call.
	MaxFailures int `json:"max_failures,omitempty" yaml:"max_failures"`
	// AgentNumber is dialled when the caller asks for a human.
	AgentNumber string `json:"agent_number,omitempty" yaml:"agent_number"`
	// CallerID is shown to the agent on transfers (KooKoo dial caller_id).
	CallerID string `json:"caller_id,omitempty" yaml:"caller_id"`
	// VoiceMode is how KooKoo calls are served: "record" (the default:
	// <record>, fetch, transcribe) or "stream" (the <stream> WebSocket).
	VoiceMode string `json:"voice_mode,omitempty" yaml:"voice_mode"`
	// SIPNumber is the KooKoo account's SIP registration number, the text
	// of <stream>; required for stream mode.
	SIPNumber string `json:"sip_number,omitempty" yaml:"sip_number"`
	// RecordCalls records whole calls in stream mode (<start-record/>).
	RecordCalls bool `json:"record_calls,omitempty" yaml:"record_calls"`
	// AnswerConfidence and ConfirmConfidence are the voice repair bands: a
	// bot answer at or above AnswerConfidence is spoken, one at or above
	// ConfirmConfidence is confirmed first ("Do you want to know about
	// …?"), anything lower is asked again (0 = the defaults, see
	// ivr.VoiceSettings).
	AnswerConfidence  float64 `json:"answer_confidence,omitempty" yaml:"answer_confidence"`
	ConfirmConfidence float64 `json:"confirm_confidence,omitempty" yaml:"confirm_confidence"`

	// Webhook channel (the seed's Platform Settings: Webhook URL, Secret Key
	// and Access Token).
	WebhookURL string `json:"webhook_url,omitempty" yaml:"webhook_url"`
	// AutoRegister registers unknown users on their first message; when false
	// the webhook API answers 403 "user is not registered" until the user is
	// registered through POST /v1.0/register_user/.
	AutoRegister bool `json:"auto_register,omitempty" yaml:"auto_register"`
	// SecretKey signs deliveries to the webhook URL (X-Koel-Signature).
	SecretKey Secret `json:"secret_key,omitempty" yaml:"secret_key"`
	// AccessToken is the webhook connection's access token.
	AccessToken Secret `json:"access_token,omitempty" yaml:"access_token"`

	// Per text channel.
	Messenger    MessengerSettings    `json:"messenger,omitzero" yaml:"messenger"`
	Twilio       TwilioSettings       `json:"twilio,omitzero" yaml:"twilio"`
	MetaWhatsApp MetaWhatsAppSettings `json:"meta_whatsapp,omitzero" yaml:"meta_whatsapp"`
	Infobip      InfobipSettings      `json:"infobip,omitzero" yaml:"infobip"`
	Gupshup      GupshupSettings      `json:"gupshup,omitzero" yaml:"gupshup"`
	Karix        KarixSettings        `json:"karix,omitzero" yaml:"karix"`
	Jio          JioSettings          `json:"jio,omitzero" yaml:"jio"`
	Webchat      WebchatSettings      `json:"webchat,omitzero" yaml:"webchat"`

	// Extra holds plain settings of adapters added later, by name. It is
	// not for credentials: those get a Secret field in a typed section.
	Extra map[string]string `json:"extra,omitempty" yaml:"extra"`
}

// MessengerSettings connect a Facebook page (fb/{identifier}).
type MessengerSettings struct {
	// PageID is the page the connection answers for.
	PageID string `json:"page_id,omitempty" yaml:"page_id"`
	// PageAccessToken authorizes Send API calls for the page.
	PageAccessToken Secret `json:"page_access_token,omitempty" yaml:"page_access_token"`
	// AppSecret verifies X-Hub-Signature-256.
	AppSecret Secret `json:"app_secret,omitempty" yaml:"app_secret"`
	// VerifyToken answers the GET subscription check (hub.verify_token).
	VerifyToken Secret `json:"verify_token,omitempty" yaml:"verify_token"`
	// GraphURL overrides https://graph.facebook.com (a local fake in tests).
	GraphURL string `json:"graph_url,omitempty" yaml:"graph_url"`
}

// TwilioSettings connect a Twilio WhatsApp sender (whatsapp/{identifier}).
type TwilioSettings struct {
	// AccountSID is the account (AC...); not secret, it appears in URLs.
	AccountSID string `json:"account_sid,omitempty" yaml:"account_sid"`
	// AuthToken verifies X-Twilio-Signature and authorizes REST sends.
	AuthToken Secret `json:"auth_token,omitempty" yaml:"auth_token"`
	// From is the sender address, e.g. "whatsapp:+14155238886".
	From string `json:"from,omitempty" yaml:"from"`
	// MessagingServiceSID (MG...), when set, is named in REST sends
	// instead of From: Twilio picks the sender from the Messaging
	// Service's sender pool.
	MessagingServiceSID string `json:"messaging_service_sid,omitempty" yaml:"messaging_service_sid"`
	// ReplyREST sends replies through the Messages API instead of TwiML.
	ReplyREST bool `json:"reply_rest,omitempty" yaml:"reply_rest"`
	// PublicURL is the callback URL exactly as configured in Twilio (the
	// signature covers it); empty derives it from the request.
	PublicURL string `json:"public_url,omitempty" yaml:"public_url"`
	// APIURL overrides https://api.twilio.com (a local fake in tests).
	APIURL string `json:"api_url,omitempty" yaml:"api_url"`
}

// MetaWhatsAppSettings connect a WhatsApp Cloud API number (wa/{identifier}).
type MetaWhatsAppSettings struct {
	// PhoneNumberID is the sending number's id (/{phone-number-id}/messages).
	PhoneNumberID string `json:"phone_number_id,omitempty" yaml:"phone_number_id"`
	// AccessToken is the system-user token (Authorization: Bearer).
	AccessToken Secret `json:"access_token,omitempty" yaml:"access_token"`
	// AppSecret verifies X-Hub-Signature-256.
	AppSecret Secret `json:"app_secret,omitempty" yaml:"app_secret"`
	// VerifyToken answers the GET subscription check.
	VerifyToken Secret `json:"verify_token,omitempty" yaml:"verify_token"`
	// GraphURL overrides https://graph.facebook.com (a local fake in tests).
	GraphURL string `json:"graph_url,omitempty" yaml:"graph_url"`
}

// InfobipSettings connect an Infobip WhatsApp sender (infobip/{identifier}).
type InfobipSettings struct {
	// BaseURL is the account's API base, https://xxxxx.api.infobip.com.
	BaseURL string `json:"base_url,omitempty" yaml:"base_url"`
	// APIKey authorizes sends (Authorization: App <key>).
	APIKey Secret `json:"api_key,omitempty" yaml:"api_key"`
	// Sender is the business number replies are sent from.
	Sender string `json:"sender,omitempty" yaml:"sender"`
	// InboundToken, when set, must arrive as the inbound Authorization
	// header (the "additional authorization header" agreed at setup).
	InboundToken Secret `json:"inbound_token,omitempty" yaml:"inbound_token"`
}

// GupshupSettings connect a Gupshup WhatsApp app (gupshup/{identifier}).
type GupshupSettings struct {
	// AppName is the Gupshup app (src.name).
	AppName string `json:"app_name,omitempty" yaml:"app_name"`
	// APIKey authorizes sends (apikey header).
	APIKey Secret `json:"api_key,omitempty" yaml:"api_key"`
	// Source is the business number, E.164 without '+'.
	Source string `json:"source,omitempty" yaml:"source"`
	// BaseURL overrides https://api.gupshup.io (a local fake in tests).
	BaseURL string `json:"base_url,omitempty" yaml:"base_url"`
	// AppToken, when set, is the "Associate an App" token the inbound
	// Authorization header must carry.
	AppToken Secret `json:"app_token,omitempty" yaml:"app_token"`
}

// KarixSettings connect a Karix WhatsApp account (karix/{identifier}).
type KarixSettings struct {
	// APIKey authorizes sends and, as the inbound token, callbacks.
	APIKey Secret `json:"api_key,omitempty" yaml:"api_key"`
	// Sender is the business number replies are sent from.
	Sender string `json:"sender,omitempty" yaml:"sender"`
	// BaseURL is the Karix API base.
	BaseURL string `json:"base_url,omitempty" yaml:"base_url"`
}

// JioSettings connect a Jio bot (jio/{identifier}).
type JioSettings struct {
	// AppID is the bot's client id for the token endpoint.
	AppID string `json:"app_id,omitempty" yaml:"app_id"`
	// AppSecret signs the GET verification and obtains send tokens.
	AppSecret Secret `json:"app_secret,omitempty" yaml:"app_secret"`
	// AccessToken is the connection's access token (inbound and sends).
	AccessToken Secret `json:"access_token,omitempty" yaml:"access_token"`
	// BaseURL overrides the Jio API base (a local fake in tests).
	BaseURL string `json:"base_url,omitempty" yaml:"base_url"`
}

// WebchatSettings configure an other-channels (Website Chat) app.
type WebchatSettings struct {
	// CustomDomains are the domains a webchat user may be created for.
	CustomDomains []string `json:"custom_domains,omitempty" yaml:"custom_domains"`
	// EventWebhookURL receives bot, agent and broadcast message events.
	EventWebhookURL string `json:"event_webhook_url,omitempty" yaml:"event_webhook_url"`
	// EventWebhookSecret signs event webhook deliveries.
	EventWebhookSecret Secret `json:"event_webhook_secret,omitempty" yaml:"event_webhook_secret"`
}

// Redacted returns a copy with every set credential replaced by "***"
// (for display next to other settings).
func (s ConnectionSettings) Redacted() ConnectionSettings {
	for _, f := range s.secretFields() {
		if *f.p != "" {
			*f.p = redactedMark
		}
	}
	return s
}

// User is one end user of a business on one channel.
type User struct {
	ID         int64
	BusinessID int64
	Channel    Channel
	// ExternalID is the platform's id for the user: webhook auth_id, caller
	// number, Messenger PSID, WhatsApp number.
	ExternalID string
	Registered bool
	CreatedAt  time.Time
}

// HandoffState says who answers a conversation.
type HandoffState string

// Handoff states of a conversation.
const (
	HandoffBot     HandoffState = "bot"     // the bot answers
	HandoffPending HandoffState = "pending" // waiting for an agent; the bot stays quiet
	HandoffAgent   HandoffState = "agent"   // an agent answers
)

// Conversation is one chat of a user with a business. A user has at most one
// open conversation per business; ConversationNo counts them per user from 1.
type Conversation struct {
	ID             int64
	BusinessID     int64
	UserID         int64
	ConversationNo int64
	Open           bool
	Handoff        HandoffState
	CreatedAt      time.Time
	ClosedAt       time.Time
}

// Sender values of a [Message]. Agents are "agent(<name>)", see [AgentSender].
const (
	SenderUser = "user"
	SenderBot  = "bot"
)

// AgentSender is the Sender value of a message an agent wrote.
func AgentSender(name string) string { return "agent(" + name + ")" }

// Message is one message of a conversation, from the user, the bot or an agent.
type Message struct {
	ID             int64
	BusinessID     int64
	ConversationID int64
	UserID         int64
	Sender         string
	Text           string
	QuickReplies   []string
	Channel        Channel
	// ExternalID is the platform's message id of an inbound message, used to
	// drop duplicate deliveries. Empty when the platform gives none.
	ExternalID string
	// Node and Confidence record which FAQ node answered (bot messages).
	Node       string
	Confidence float64
	CreatedAt  time.Time
}

// CallState is where a voice call is in its state machine.
type CallState string

// States of a voice call.
const (
	CallStateUnknown      CallState = ""
	CallStateListening    CallState = "listening"    // a <record> is running
	CallStateMenu         CallState = "menu"         // a <collectdtmf> is running
	CallStateConfirming   CallState = "confirming"   // a yes/no answer to a confirmation is awaited (record or keys)
	CallStateTopics       CallState = "topics"       // the topic menu's <collectdtmf> is running
	CallStateCollecting   CallState = "collecting"   // a value (an order number) is asked for: keys, then speech
	CallStateTransferring CallState = "transferring" // a <dial> to an agent is running
	CallStateHangingUp    CallState = "hanging_up"   // <hangup/> was sent
	CallStateEnded        CallState = "ended"
)

// Call is one voice call, keyed by the KooKoo sid.
type Call struct {
	SID            string
	ConnectionID   int64
	BusinessID     int64
	UserID         int64
	ConversationID int64
	// Caller is the caller's number as KooKoo sent it (cid). Log it only
	// through a mask.
	Caller       string
	CalledNumber string
	State        CallState
	// Turn counts recordings asked for; it names the next <record>.
	Turn int
	// Failures counts consecutive failures and no-inputs.
	Failures int
	// Outcome is set when the call ends: completed, caller_hangup,
	// transferred, failed, no_input.
	Outcome string
	// Repair is the dialogue-repair state: misses, the answer awaiting
	// confirmation, the topic menu's options.
	Repair CallRepair
	// LastEventKey and LastResponse answer a duplicate delivery of the last
	// event with the same response, without side effects.
	LastEventKey string
	LastResponse string
	// Version increases on every update; updates carry the version they read
	// (optimistic concurrency).
	Version   int64
	StartedAt time.Time
	UpdatedAt time.Time
	EndedAt   time.Time
}

// Turn is one caller utterance of a call: what was recorded, what it was
// transcribed to, and what each step cost.
type Turn struct {
	ID           int64
	CallSID      string
	Seq          int
	RecordingURL string
	RecordStatus string
	EndReason    string
	Transcript   string
	Confidence   float64
	Reply        string
	// Error is the failure reason when the turn ended in a break message.
	Error string
	// MessageID is the user message this turn stored, 0 when none.
	MessageID int64
	// Understanding is the repair band of the turn: answered, confirm,
	// confirmed, declined, reprompt, no_speech, menu, failed (the
	// Understanding* constants).
	Understanding string
	// Durations in milliseconds.
	SpeechMS  int64
	FetchMS   int64
	DecodeMS  int64
	STTMS     int64
	BotMS     int64
	TotalMS   int64
	CreatedAt time.Time
}

// FAQNode is one question/answer node of a business's FAQ.
type FAQNode struct {
	ID         int64
	BusinessID int64
	// Name is unique per business; imports upsert by it.
	Name string
	// UserSays are the phrasings that select the node.
	UserSays []string
	// BotSays are the messages the bot answers with, in order.
	BotSays   []string
	Active    bool
	UpdatedAt time.Time
}

// TaskStatus is the state of a background task such as an FAQ import.
type TaskStatus string

// Task states.
const (
	TaskPending  TaskStatus = "pending"
	TaskRunning  TaskStatus = "running"
	TaskComplete TaskStatus = "complete"
	TaskFailed   TaskStatus = "failed"
)

// Task is a background job whose status clients poll (FAQ import).
type Task struct {
	ID         string
	BusinessID int64
	Kind       string
	Status     TaskStatus
	Total      int
	Done       int
	// Errors lists problems found, e.g. "line 7: node_name is empty".
	Errors    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OutboxStatus is the delivery state of an [OutboxItem].
type OutboxStatus string

// Outbox states.
const (
	OutboxPending   OutboxStatus = "pending"
	OutboxDelivered OutboxStatus = "delivered"
	OutboxDead      OutboxStatus = "dead"
)

// OutboxItem is one delivery owed to a platform or an integrator, stored
// with the reply that caused it so it survives a restart. It never holds a
// credential: the channel's sender reads those from the connection at send
// time.
type OutboxItem struct {
	ID           int64
	ConnectionID int64
	// Channel names the sender that delivers the item (see package
	// ivr/outbox); empty means ChannelWebhook.
	Channel Channel
	// Recipient is the platform's id of the user the item is for (webhook
	// auth_id, Messenger PSID, WhatsApp number). Items of one connection and
	// recipient are delivered one at a time, in id order.
	Recipient string
	// IdempotencyKey is unique; receivers use it to drop duplicates.
	IdempotencyKey string
	// URL is the destination when it is chosen per item (the webhook URL);
	// senders of platform APIs leave it empty and use the connection's.
	URL string
	// Body is the payload, for replies the Standard Message Format JSON
	// (outbox.Message) that the channel's sender renders for its platform;
	// ContentType is its media type.
	Body        []byte
	ContentType string
	Status      OutboxStatus
	// Attempts counts the attempts made; MaxAttempts, when positive, caps
	// them besides the dispatcher's retry horizon.
	Attempts    int
	MaxAttempts int
	// RetryFrom starts the retry horizon: creation, or the last redelivery
	// of a dead letter.
	RetryFrom time.Time
	// NextAttemptAt is when the item is due; LeaseUntil is set while a
	// dispatcher owns it.
	NextAttemptAt time.Time
	LeaseUntil    time.Time
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   time.Time
}
