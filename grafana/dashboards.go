// Package grafana defines koel's Grafana dashboards as code, built with the
// Grafana Foundation SDK. `koel dashboards` writes them to grafana/dashboards,
// where Grafana's file provisioning (grafana/provisioning) picks them up.
//
// Every panel queries metrics koel exports today; the dashboard test in
// cmd/koel runs each query against a real Prometheus scraping a real koel.
package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// DatasourceUID is the uid of the Prometheus datasource that
// grafana/provisioning/datasources/koel.yml provisions and every panel uses.
const DatasourceUID = "koel-prometheus"

// File is one generated dashboard: its file name under grafana/dashboards
// and its JSON.
type File struct {
	Name string
	JSON []byte
}

// query is one panel query: a PromQL expression and its legend.
type query struct {
	expr, legend string
}

// panel is a panel before it is built: what it shows and how.
type panel struct {
	title, description, unit string
	single                   bool // a stat panel rather than a time series
	queries                  []query
}

// board is a dashboard before it is built.
type board struct {
	file, uid, title, description string
	rows                          []row
}

type row struct {
	title  string
	panels []panel
}

func ds() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(DatasourceUID)}
}

// rate is the per-second rate of a counter summed by the given labels.
func rate(metric, by string) string {
	if by == "" {
		return fmt.Sprintf("sum(rate(%s[$__rate_interval]))", metric)
	}
	return fmt.Sprintf("sum by (%s) (rate(%s[$__rate_interval]))", by, metric)
}

// quantile is the q quantile of a histogram, by the given extra labels.
func quantile(q float64, histogram, by string) string {
	labels := "le"
	if by != "" {
		labels = by + ", le"
	}
	return fmt.Sprintf("histogram_quantile(%g, sum by (%s) (rate(%s_bucket[$__rate_interval])))", q, labels, histogram)
}

// latency is a panel of the p50 and p95 of a histogram.
func latency(title, description, histogram string) panel {
	return panel{title: title, description: description, unit: "s", queries: []query{
		{quantile(0.5, histogram, ""), "p50"},
		{quantile(0.95, histogram, ""), "p95"},
	}}
}

func boards() []board {
	return []board{
		{
			file: "koel-calls.json", uid: "koel-calls", title: "koel / Calls overview",
			description: "Voice calls in progress and ended, turns, transfers, break messages and KooKoo traffic.",
			rows: []row{
				{"Now", []panel{
					{title: "Active calls", description: "Voice calls started and not yet ended, summed over nodes.", single: true,
						queries: []query{{"sum(koel_calls_active)", "active"}}},
					{title: "Nodes up", description: "koel nodes Prometheus scrapes successfully.", single: true,
						queries: []query{{`sum(up{job="koel"})`, "up"}}},
					{title: "Nodes ready", description: "koel nodes taking new work (koel_ready 1); a draining node counts 0.", single: true,
						queries: []query{{"sum(koel_ready)", "ready"}}},
					{title: "Calls ended / s", description: "Voice calls ended, all outcomes.", single: true, unit: "reqps",
						queries: []query{{rate("koel_calls_total", ""), "calls"}}},
				}},
				{"Calls and turns", []panel{
					{title: "Calls ended by outcome", description: "caller_hangup, transferred, failed, no_input, abandoned.", unit: "reqps",
						queries: []query{{rate("koel_calls_total", "outcome"), "{{outcome}}"}}},
					{title: "Caller turns by result", description: "answered, no_speech, not_understood, failed, hangup.", unit: "reqps",
						queries: []query{{rate("koel_call_turns_total", "result"), "{{result}}"}}},
					{title: "Recordings by end reason", description: "How caller recordings ended: silence, max_duration, dtmf, hangup, no_input, barge_in, other.", unit: "reqps",
						queries: []query{{rate("koel_record_ends_total", "reason"), "{{reason}}"}}},
					{title: "Transfers to an agent", description: "started, answered, not_answered.", unit: "reqps",
						queries: []query{{rate("koel_transfers_total", "result"), "{{result}}"}}},
					{title: "Break messages by reason", description: "The caller heard the break message: fetch, decode, stt, bot, bot_timeout, invalid, internal.", unit: "reqps",
						queries: []query{{rate("koel_break_messages_total", "reason"), "{{reason}}"}}},
				}},
				{"Call length and handoffs", []panel{
					latency("Call duration", "Length of ended voice calls, from the first event to the end.", "koel_call_duration_seconds"),
					{title: "Turns per call", description: "Caller turns in one call, observed when it ends.", queries: []query{
						{quantile(0.5, "koel_call_turns", ""), "p50"},
						{quantile(0.95, "koel_call_turns", ""), "p95"},
					}},
					{title: "Handoffs by kind", description: "requested (send_chat_to_agent), bot_node, phone, queued, taken, handed_back.", unit: "reqps",
						queries: []query{{rate("koel_handoffs_total", "kind"), "{{kind}}"}}},
				}},
				{"Softphone", []panel{
					{title: "RTP packets by direction", description: "Softphone RTP packets read from callers (in) and sent to them (out).", unit: "pps",
						queries: []query{{rate("koel_sim_rtp_packets_total", "direction"), "{{direction}}"}}},
					{title: "Late and lost frames", description: "Frames sent over 40 ms late, and caller packets missing by sequence number.", unit: "pps", queries: []query{
						{rate("koel_sim_frames_late_total", ""), "late"},
						{rate("koel_sim_frames_lost_total", ""), "lost"},
					}},
				}},
				{"KooKoo", []panel{
					{title: "KooKoo requests by event", description: "Requests KooKoo made to the app URL, by event.", unit: "reqps",
						queries: []query{{rate("koel_kookoo_request_duration_seconds_count", "event"), "{{event}}"}}},
					{title: "KooKoo answer time p95 by event", description: "Time koel took to answer KooKoo, by event.", unit: "s",
						queries: []query{{quantile(0.95, "koel_kookoo_request_duration_seconds", "event"), "{{event}}"}}},
					{title: "HTTP responses by code", description: "Every HTTP response koel served, by status code.", unit: "reqps",
						queries: []query{{rate("koel_http_requests_total", "code"), "{{code}}"}}},
				}},
			},
		},
		{
			file: "koel-voice-latency.json", uid: "koel-voice-latency", title: "koel / Voice pipeline latency",
			description: "Where a voice turn's time goes: recording fetch, decode, speech-to-text, bot, and the whole turn.",
			rows: []row{
				{"Whole turn", []panel{
					latency("Utterance to answer", "From a recorded utterance to its answer (fetch, decode, STT, bot).", "koel_voice_turn_seconds"),
					{title: "Utterance to answer p95", description: "The 95th percentile of the whole voice turn.", single: true, unit: "s",
						queries: []query{{quantile(0.95, "koel_voice_turn_seconds", ""), "p95"}}},
					latency("Utterance length", "Length of the caller's audio in one utterance.", "koel_utterance_seconds"),
				}},
				{"Stages", []panel{
					latency("Recording fetch", "Time to start downloading the caller's recording.", "koel_recording_fetch_seconds"),
					latency("Recording decode", "Downloading and decoding the recording to 8 kHz PCM.", "koel_recording_decode_seconds"),
					latency("Speech-to-text", "Time to transcribe the recording.", "koel_stt_seconds"),
					latency("Bot (voice)", "Time the engine took to answer a voice turn (store and bot).", "koel_voice_bot_seconds"),
					latency("Text-to-speech", "Time to synthesize one reply text for a caller (softphone and stream mode; cache hits included).", "koel_tts_seconds"),
				}},
				{"Speech-to-text engine", []panel{
					{title: "Decoders alive", description: "Pocketsphinx decoders alive (idle or in use).", single: true,
						queries: []query{{"sum(koel_stt_decoders)", "decoders"}}},
					{title: "Audio transcribed (s per s)", description: "Seconds of caller audio transcribed per second.",
						queries: []query{{rate("koel_stt_audio_seconds_total", ""), "audio"}}},
				}},
			},
		},
		{
			file: "koel-understanding.json", uid: "koel-understanding", title: "koel / Understanding quality",
			description: "How well koel understands callers and users: dialogue-repair bands, recognition outcomes, bot fallbacks.",
			rows: []row{
				{"Voice", []panel{
					{title: "Voice turns by understanding band", description: "answered, confirm, confirmed, declined, reprompt, no_speech, menu, failed.", unit: "reqps",
						queries: []query{{rate("koel_call_understanding_total", "band"), "{{band}}"}}},
					{title: "Share of voice turns by band", description: "Each band's share of all voice turns.", unit: "percentunit",
						queries: []query{{"sum by (band) (rate(koel_call_understanding_total[$__rate_interval])) / ignoring(band) group_left() sum(rate(koel_call_understanding_total[$__rate_interval]))", "{{band}}"}}},
					{title: "Turns answered", description: "Share of caller turns answered by the bot.", single: true, unit: "percentunit",
						queries: []query{{`sum(rate(koel_call_turns_total{result="answered"}[$__rate_interval])) / sum(rate(koel_call_turns_total[$__rate_interval]))`, "answered"}}},
					{title: "Recognition outcomes", description: "Utterances transcribed: text, empty, low_confidence.", unit: "reqps",
						queries: []query{{rate("koel_stt_utterances_total", "outcome"), "{{outcome}}"}}},
				}},
				{"Text", []panel{
					{title: "Bot fallbacks by channel", description: "Replies that fell back because nothing matched.", unit: "reqps",
						queries: []query{{rate("koel_bot_fallbacks_total", "channel"), "{{channel}}"}}},
					{title: "Fallback share by channel", description: "Fallbacks as a share of the bot's replies on each channel.", unit: "percentunit",
						queries: []query{{`sum by (channel) (rate(koel_bot_fallbacks_total[$__rate_interval])) / sum by (channel) (rate(koel_messages_total{sender="bot"}[$__rate_interval]))`, "{{channel}}"}}},
					latency("Bot reply time", "Time the bot took to reply, all channels.", "koel_bot_latency_seconds"),
				}},
			},
		},
		{
			file: "koel-channels.json", uid: "koel-channels", title: "koel / Channels and deliveries",
			description: "Messages in and out per channel, the outbox queue, delivery attempts and failures.",
			rows: []row{
				{"Messages", []panel{
					{title: "Messages stored by channel and sender", description: "Every stored message, user or bot.", unit: "reqps",
						queries: []query{{rate("koel_messages_total", "channel, sender"), "{{channel}} {{sender}}"}}},
					{title: "Platform messages in and out", description: "Inbound accepted from a platform, outbound accepted by its send API.", unit: "reqps",
						queries: []query{{rate("koel_channel_messages_total", "channel, direction"), "{{channel}} {{direction}}"}}},
					{title: "Engine turn p95 by channel", description: "One engine turn (store, bot, store).", unit: "s",
						queries: []query{{quantile(0.95, "koel_engine_turn_seconds", "channel"), "{{channel}}"}}},
				}},
				{"Outbox", []panel{
					{title: "Outbox items by status", description: "Items in the store per channel and status, read at scrape time.",
						queries: []query{{"sum by (channel, status) (koel_outbox_items)", "{{channel}} {{status}}"}}},
					{title: "Oldest pending item age", description: "Age of the oldest item still waiting, per channel.", unit: "s",
						queries: []query{{"max by (channel) (koel_outbox_oldest_pending_age_seconds)", "{{channel}}"}}},
					{title: "Delivery attempts by result", description: "delivered, retry, dead.", unit: "reqps",
						queries: []query{{rate("koel_outbox_attempts_total", "channel, result"), "{{channel}} {{result}}"}}},
					{title: "Delivery failures by class", description: "Failed attempts by channel and class (timeout, network, rate_limited, server, client, ...).", unit: "reqps",
						queries: []query{{rate("koel_outbox_failures_total", "channel, class"), "{{channel}} {{class}}"}}},
					{title: "Store to delivered p95", description: "Time from storing an outbox item to its delivery.", unit: "s",
						queries: []query{{quantile(0.95, "koel_outbox_delivery_latency_seconds", "channel"), "{{channel}}"}}},
				}},
				{"Platforms", []panel{
					{title: "Platform send failures by class", description: "Send attempts a platform refused or that failed, by class.", unit: "reqps",
						queries: []query{{rate("koel_channel_delivery_failures_total", "channel, class"), "{{channel}} {{class}}"}}},
					{title: "Platform delivery p95", description: "From a reply stored to the platform accepting it, retries included.", unit: "s",
						queries: []query{{quantile(0.95, "koel_channel_delivery_seconds", "channel"), "{{channel}}"}}},
				}},
				{"Store", []panel{
					{title: "Store transaction p95 by kind", description: "Begin to commit or rollback, by the operation's verb (create, append, open, ...).", unit: "s",
						queries: []query{{quantile(0.95, "koel_store_transaction_seconds", "kind"), "{{kind}}"}}},
					{title: "Store transactions by result", description: "Transactions committed and rolled back.", unit: "reqps",
						queries: []query{{rate("koel_store_transaction_seconds_count", "result"), "{{result}}"}}},
					{title: "Call-lock lease conflicts", description: "PostgreSQL call-lock leases refused because another request or node held them.", unit: "reqps",
						queries: []query{{rate("koel_store_lease_conflicts_total", ""), "conflicts"}}},
				}},
			},
		},
	}
}

// build turns a panel into the SDK's builder. Panels are 8 or 6 columns wide
// (three or four to a 24-column row).
func (p panel) build(id, width uint32) cog.Builder[dashboard.Panel] {
	if p.single {
		b := stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Datasource(ds()).
			Height(6).Span(width).GraphMode(common.BigValueGraphModeArea).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
		if p.unit != "" {
			b.Unit(p.unit)
		}
		for i, q := range p.queries {
			b.WithTarget(prometheus.NewDataqueryBuilder().Datasource(ds()).RefId(refID(i)).Expr(q.expr).LegendFormat(q.legend))
		}
		return b
	}
	b := timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Datasource(ds()).
		Height(8).Span(width).Min(0).FillOpacity(10)
	if p.unit != "" {
		b.Unit(p.unit)
	}
	for i, q := range p.queries {
		b.WithTarget(prometheus.NewDataqueryBuilder().Datasource(ds()).RefId(refID(i)).Expr(q.expr).LegendFormat(q.legend))
	}
	return b
}

func refID(i int) string { return string(rune('A' + i)) }

func (b board) build() (dashboard.Dashboard, error) {
	d := dashboard.NewDashboardBuilder(b.title).Uid(b.uid).Description(b.description).
		Tags([]string{"koel"}).Refresh("30s").Time("now-1h", "now").Timezone(common.TimeZoneBrowser).Editable()
	var id uint32
	for _, r := range b.rows {
		id++
		d.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		width := uint32(24 / len(r.panels))
		if width < 6 {
			width = 6
		}
		for _, p := range r.panels {
			id++
			d.WithPanel(p.build(id, width))
		}
	}
	return d.Build()
}

// Generate builds every dashboard and returns its JSON, sorted by file name.
func Generate() ([]File, error) {
	var files []File
	for _, b := range boards() {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.uid, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.uid, err)
		}
		files = append(files, File{Name: b.file, JSON: buf.Bytes()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// Write generates every dashboard into dir, replacing files of the same name.
func Write(dir string) ([]File, error) {
	files, err := Generate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dashboards dir: %w", err)
	}
	for _, f := range files {
		if strings.ContainsAny(f.Name, `/\`) {
			return nil, fmt.Errorf("dashboard file name %q", f.Name)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.JSON, 0o644); err != nil {
			return nil, fmt.Errorf("write dashboard: %w", err)
		}
	}
	return files, nil
}
