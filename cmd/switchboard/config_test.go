package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// clearConfigEnv unsets, for the test, every variable a Config reads, so
// that the machine's environment cannot leak into it.
func clearConfigEnv(t *testing.T) {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.Bind(fs)
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if _, ok := os.LookupEnv(name); ok {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
	})
}

// bindParse binds a Config to a new flag set, with the variables set in
// env, and parses args.
func bindParse(t *testing.T, env map[string]string, args ...string) *Config {
	t.Helper()
	clearConfigEnv(t)
	for k, v := range env {
		t.Setenv(envPrefix+k, v)
	}
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestConfigMalformedEnv(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"INGEST_BATCH", "2k", "not an integer"},
		{"FORM_RATE_LIMIT", "", "not an integer"},
		{"INGEST_WORKERS", "99999999999999999999", "out of range"},
		{"SMS_PRICE", "0,01", "not a number"},
		{"ROUTING_OFF", "yes", "not a boolean"},
		{"REDIS_ALLOW_VOLATILE", "1x", "not a boolean"},
		{"IMAP_POLL", "30", "not a duration"},
		{"SHUTDOWN_TIMEOUT", "ten seconds", "not a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := bindParse(t, map[string]string{tc.name: tc.value})
			err := c.Validate()
			lines := errLines(err)
			if len(lines) != 1 {
				t.Fatalf("Validate() = %v, want one problem", err)
			}
			if want := envPrefix + tc.name + "=" + `"` + tc.value + `"`; !strings.Contains(lines[0], want) || !strings.Contains(lines[0], tc.want) {
				t.Errorf("Validate() = %q, want it to name %s and say %q", lines[0], want, tc.want)
			}
		})
	}
}

func TestConfigMalformedEnvAllReported(t *testing.T) {
	env := map[string]string{
		"INGEST_BATCH":  "2k",
		"SMS_PRICE":     "cheap",
		"ROUTING_OFF":   "nope",
		"OFFLINE_GRACE": "5",
	}
	c := bindParse(t, env)
	err := c.Validate()
	lines := errLines(err)
	if len(lines) != len(env) {
		t.Fatalf("Validate() = %v, want %d problems, one a line", err, len(env))
	}
	for name, value := range env {
		want := envPrefix + name + `="` + value + `"`
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no line names %s in:\n%v", want, err)
		}
	}
}

func TestConfigFlagWinsOverMalformedEnv(t *testing.T) {
	c := bindParse(t, map[string]string{"INGEST_BATCH": "2k", "IMAP_POLL": "soon"}, "--ingest-batch", "100")
	err := c.Validate()
	if c.IngestBatch != 100 {
		t.Errorf("IngestBatch = %d, want the flag's 100", c.IngestBatch)
	}
	// The variable the flag replaced is no problem; the other one still is.
	if lines := errLines(err); len(lines) != 1 || !strings.Contains(lines[0], `SWITCHBOARD_IMAP_POLL="soon"`) {
		t.Errorf("Validate() = %v, want only SWITCHBOARD_IMAP_POLL reported", err)
	}
}

func TestConfigEnvParsed(t *testing.T) {
	c := bindParse(t, map[string]string{
		"INGEST_BATCH": "100", "SMS_PRICE": "0.05", "ROUTING_OFF": "true", "IMAP_POLL": "90s",
	})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.IngestBatch != 100 || c.SMSPricePerSegment != 0.05 || !c.RoutingOff || c.IMAPPoll != 90*time.Second {
		t.Errorf("got batch %d, price %v, routing off %v, poll %v", c.IngestBatch, c.SMSPricePerSegment, c.RoutingOff, c.IMAPPoll)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := bindParse(t, map[string]string{"SHUTDOWN_TIMEOUT": "-1s"},
		"--log-level", "loud", "--ingest-batch", "0", "--outbox-max-attempts", "-2", "--ingest-workers", "-1",
		"--form-rate-limit", "-5", "--sms-price", "-1", "--imap-poll", "-1m", "--queue-reclaim-after", "-1s",
		"--reopen-window", "-1h", "--offline-grace", "-1m", "--classifier-retrain", "-1h", "--livechat-email-after", "-1s",
		"--twilio-account-sid", "AC1", "--database-url", "mysql://x", "--blob-key", "short-secret",
		"--csat-delay", "soon", "--response-targets", "livechat=1m,fax=1h")
	err := c.Validate()
	lines := errLines(err)
	for _, want := range []string{
		"SWITCHBOARD_SHUTDOWN_TIMEOUT (--shutdown-timeout) is -1s: must not be negative",
		"SWITCHBOARD_LOG_LEVEL (--log-level) \"loud\"",
		"SWITCHBOARD_INGEST_BATCH (--ingest-batch) is 0: must be at least 1",
		"SWITCHBOARD_OUTBOX_MAX_ATTEMPTS (--outbox-max-attempts) is -2",
		"SWITCHBOARD_INGEST_WORKERS (--ingest-workers) is -1",
		"SWITCHBOARD_FORM_RATE_LIMIT (--form-rate-limit) is -5",
		"SWITCHBOARD_SMS_PRICE (--sms-price) is -1",
		"SWITCHBOARD_IMAP_POLL (--imap-poll) is -1m0s",
		"SWITCHBOARD_QUEUE_RECLAIM_AFTER (--queue-reclaim-after) is -1s",
		"SWITCHBOARD_REOPEN_WINDOW (--reopen-window) is -1h0m0s",
		"SWITCHBOARD_OFFLINE_GRACE (--offline-grace) is -1m0s",
		"SWITCHBOARD_LIVECHAT_EMAIL_AFTER (--livechat-email-after) is -1s",
		"SWITCHBOARD_CLASSIFIER_RETRAIN (--classifier-retrain) is -1h0m0s",
		"SWITCHBOARD_TWILIO_AUTH_TOKEN",
		"SWITCHBOARD_TWILIO_FROM",
		"SWITCHBOARD_DATABASE_URL (--database-url)",
		"SWITCHBOARD_BLOB_KEY (--blob-key) has 12 characters: must have at least 32",
		"SWITCHBOARD_CSAT_DELAY (--csat-delay) \"soon\"",
		"SWITCHBOARD_RESPONSE_TARGETS (--response-targets) \"fax=1h\"",
	} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no line says %q", want)
		}
	}
	if len(lines) != 19 {
		t.Errorf("got %d lines, want 19:\n%v", len(lines), err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "config: ") {
			t.Errorf("line %q does not start with config:", l)
		}
	}
}

func TestConfigBlobKey(t *testing.T) {
	key := strings.Repeat("k", 32)
	c := bindParse(t, map[string]string{"BLOB_KEY": key})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.BlobKey != key {
		t.Errorf("BlobKey = %q, want SWITCHBOARD_BLOB_KEY's", c.BlobKey)
	}
	c = bindParse(t, map[string]string{"BLOB_KEY": key[:31]})
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_BLOB_KEY (--blob-key) has 31 characters") {
		t.Fatalf("Validate() = %v, want the short key refused", err)
	}
	if strings.Contains(err.Error(), key[:31]) {
		t.Errorf("Validate() = %v: the message shows the key", err)
	}
}

func TestConfigZeroMeansDefault(t *testing.T) {
	c := bindParse(t, nil, "--reopen-window", "0", "--queue-reclaim-after", "0", "--imap-poll", "0",
		"--offline-grace", "0", "--shutdown-timeout", "0", "--classifier-retrain", "0", "--sms-price", "0",
		"--ingest-workers", "0", "--form-rate-limit", "0", "--data-dir", "d")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"ReopenWindow", c.ReopenWindow, defaultReopenWindow},
		{"QueueReclaimAfter", c.QueueReclaimAfter, defaultQueueReclaimAfter},
		{"IMAPPoll", c.IMAPPoll, defaultIMAPPoll},
		{"OfflineGrace", c.OfflineGrace, defaultOfflineGrace},
		{"ShutdownTimeout", c.ShutdownTimeout, defaultShutdownTimeout},
		{"ClassifierRetrain", c.ClassifierRetrain, time.Duration(0)}, // never
		{"SMSPricePerSegment", c.SMSPricePerSegment, defaultSMSPrice},
		{"IngestWorkers", c.IngestWorkers, 1},         // SQLite
		{"FormRatePerMinute", c.FormRatePerMinute, 0}, // off
		{"DatabaseURL", c.DatabaseURL, "sqlite:" + filepath.Join("d", "switchboard.db")},
		{"BlobURL", c.BlobURL, "file:" + filepath.Join("d", "files")},
		{"PublicURL", c.PublicURL, "http://127.0.0.1:8080"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestConfigFlagsAndVariables guards the public contract: the flag names,
// and every flag's help naming the variable its default comes from.
func TestConfigFlagsAndVariables(t *testing.T) {
	clearConfigEnv(t)
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Bind(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		names = append(names, f.Name)
		if v := "(" + envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")) + ")"; !strings.Contains(f.Usage, v) {
			t.Errorf("--%s: help %q does not name %s", f.Name, f.Usage, v)
		}
	})
	want := []string{
		"addr", "blob-key", "blob-url", "classifier-retrain", "csat-delay", "data-dir", "database-url", "dkim-key", "dkim-key-file", "dkim-selector", "dns-resolver",
		"email-from", "event-log", "form-origins", "form-rate-limit", "form-thanks-url", "graph-api-url", "imap-poll", "imap-urls",
		"inbound-email-secret", "ingest-batch", "ingest-workers", "instagram-account-id", "livechat-email-after", "log-format", "log-level",
		"messenger-page-id", "messenger-page-token", "meta-access-token", "meta-app-id", "meta-app-secret", "meta-verify-token", "metrics-addr", "metrics-token", "offline-grace",
		"outbox-max-attempts", "phone-region", "public-url", "queue-reclaim-after", "redis-allow-volatile", "redis-prefix", "redis-url",
		"reopen-window", "response-targets", "routing-off", "shutdown-timeout", "sms-price", "smtp-url", "sqlite-cache-mb", "trust-proxy", "twilio-account-sid",
		"twilio-api-url", "twilio-auth-token", "twilio-from", "twilio-messaging-service-sid", "voice-greeting",
		"whatsapp-business-account-id", "whatsapp-phone-number-id",
	}
	if !slices.Equal(names, want) {
		t.Errorf("flags:\n got %q\nwant %q", names, want)
	}
}

// TestServeMalformedEnv runs the serve command as main does: a variable
// that does not parse stops it before it opens anything.
func TestServeMalformedEnv(t *testing.T) {
	clearConfigEnv(t)
	t.Setenv("SWITCHBOARD_INGEST_BATCH", "2k")
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, &stdout, &stderr)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve = %v after %v, want it to refuse to start", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), `SWITCHBOARD_INGEST_BATCH="2k"`) {
		t.Errorf("serve = %v, want it to name SWITCHBOARD_INGEST_BATCH and \"2k\"", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created (%v): serve went on after the bad setting", err)
	}
}

// TestServeMalformedEnvExits runs main in a child process (this test
// binary, re-executed) and checks the exit status and message.
func TestServeMalformedEnvExits(t *testing.T) {
	if os.Getenv("SWITCHBOARD_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"switchboard"}, flag.Args()...)
		main()
		return
	}
	clearConfigEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServeMalformedEnvExits$", "--", "serve")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_TEST_RUN_MAIN=1",
		"SWITCHBOARD_INGEST_BATCH=2k", "SWITCHBOARD_ADDR=127.0.0.1:0", "SWITCHBOARD_DATA_DIR="+dataDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("switchboard serve: %v, want exit status 1\nstdout: %s\nstderr: %s", err, &stdout, &stderr)
	}
	if want := `switchboard: config: SWITCHBOARD_INGEST_BATCH="2k": not an integer`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", &stderr, want)
	}
}
