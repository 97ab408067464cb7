package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
)

const outboxUsage = `koel outbox list [--connection ID] [--after ID] [--limit 100] [--json]
koel outbox redeliver (--id 1,2,... | --connection ID | --all)
koel outbox purge (--id 1,2,... | --connection ID | --all)
  common: [--data-dir ./data] [--database-url URL]`

// outboxCommand runs `koel outbox list|redeliver|purge`: the dead letters
// of the store koel serve uses, handled directly (a running server picks
// redelivered items up at its next poll).
func outboxCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w:\n%s", errUsage, outboxUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("koel outbox "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", "", "data directory (default $KOEL_DATA_DIR or ./data)")
	dbURL := fs.String("database-url", "", "PostgreSQL URL (default $KOEL_DATABASE_URL or SQLite)")
	conn := fs.Int64("connection", 0, "only this connection's dead letters")
	var after, limit *int64
	var asJSON, all *bool
	var ids *string
	switch verb {
	case "list":
		after = fs.Int64("after", 0, "list after this id (the next_after_id of the previous page)")
		limit = fs.Int64("limit", 100, "page size, 1..1000")
		asJSON = fs.Bool("json", false, "print JSON")
	case "redeliver", "purge":
		ids = fs.String("id", "", "comma-separated item ids")
		all = fs.Bool("all", false, "every dead letter (of --connection, when given)")
	default:
		return fmt.Errorf("%w: unknown outbox command %q\n%s", errUsage, verb, outboxUsage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v\n%s", errUsage, err, outboxUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q\n%s", errUsage, fs.Arg(0), outboxUsage)
	}
	if *conn < 0 {
		return fmt.Errorf("%w: --connection must be positive", errUsage)
	}
	var sel outbox.Selection
	if verb != "list" {
		sel = outbox.Selection{ConnectionID: *conn, All: *all}
		for _, f := range strings.Split(*ids, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("%w: --id %q is not a positive item id", errUsage, f)
			}
			sel.IDs = append(sel.IDs, id)
		}
		if len(sel.IDs) == 0 && sel.ConnectionID == 0 && !sel.All {
			return fmt.Errorf("%w: choose dead letters with --id, --connection or --all\n%s", errUsage, outboxUsage)
		}
		if len(sel.IDs) > outbox.MaxAdminPage {
			return fmt.Errorf("%w: at most %d ids at once", errUsage, outbox.MaxAdminPage)
		}
	} else if *limit < 1 || *limit > outbox.MaxAdminPage || *after < 0 {
		return fmt.Errorf("%w: --limit must be 1..%d and --after not negative", errUsage, outbox.MaxAdminPage)
	}
	if *dataDir == "" {
		*dataDir = getenv("KOEL_DATA_DIR")
	}
	if *dataDir == "" {
		*dataDir = "./data"
	}
	if *dbURL == "" {
		*dbURL = getenv("KOEL_DATABASE_URL")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, err := store.Open(ctx, *dbURL, *dataDir, newLogger(stderr, "warn", "text"))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	switch verb {
	case "list":
		return listDeadLetters(ctx, st, stdout, store.OutboxQuery{ConnectionID: *conn, AfterID: *after, Limit: int(*limit)}, *asJSON)
	case "redeliver":
		n, err := st.RedeliverOutbox(ctx, store.DeadLetters{IDs: sel.IDs, ConnectionID: sel.ConnectionID, All: sel.All}, time.Now())
		if err != nil {
			return fmt.Errorf("redeliver: %w", err)
		}
		fmt.Fprintf(stdout, "%d dead letters are pending again (a running koel delivers them at its next poll)\n", n)
	case "purge":
		n, err := st.PurgeOutbox(ctx, store.DeadLetters{IDs: sel.IDs, ConnectionID: sel.ConnectionID, All: sel.All})
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		fmt.Fprintf(stdout, "%d dead letters purged\n", n)
	}
	return nil
}

func listDeadLetters(ctx context.Context, st outbox.AdminStore, stdout io.Writer, q store.OutboxQuery, asJSON bool) error {
	q.Status = "dead"
	items, err := st.QueryOutbox(ctx, q)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	page := outbox.DeadLetterPage{Items: make([]outbox.DeadLetter, 0, len(items))}
	for _, it := range items {
		page.Items = append(page.Items, outbox.NewDeadLetter(it))
	}
	if len(items) == q.Limit {
		page.NextAfterID = items[len(items)-1].ID
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(page)
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONNECTION\tCHANNEL\tATTEMPTS\tCREATED\tLAST ERROR")
	for _, dl := range page.Items {
		last := dl.LastError
		if r := []rune(last); len(r) > 80 {
			last = string(r[:77]) + "..."
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\n", dl.ID, dl.ConnectionID, dl.Channel, dl.Attempts, dl.CreatedAt, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextAfterID != 0 {
		fmt.Fprintf(stdout, "more: koel outbox list --after %d\n", page.NextAfterID)
	}
	return nil
}
