// Command switchboard runs the Switchboard unified inbox.
//
//	switchboard serve            run the server (flags and SWITCHBOARD_* variables)
//	switchboard demo             run a live demo on the embedded default
//	switchboard migrate          apply database migrations and exit
//	switchboard agent add ...    create an agent and print an API token
//	switchboard site add ...     add a live-chat site and print its key and secret
//	switchboard bench ...        drive load at an instance and report rates
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	// Business hours name IANA time zones; embedded, they resolve on
	// images without /usr/share/zoneinfo (distroless, scratch).
	_ "time/tzdata"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
)

const usage = `usage: switchboard <command> [flags]

commands:
  serve       run the server
  demo        run a live demo on the embedded default, with simulated traffic
  migrate     apply database migrations and exit
  agent add   create an agent and print its API token (--email, --name, --role, --skills, --password)
  site add    add a live-chat site and print its key and secret (--name, --origin, --team)
  bench       load-test an instance and report ingestion rate and latency
              (bench route: the router with many agents and a long queue;
              bench sockets: agents' sockets, event fan-out and memory;
              bench list: list queries over many conversations;
              bench pages: the workspace's pages over many conversations)
  classifier train
              train the topic classifier on resolved conversations

Run 'switchboard <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "agent":
		if len(args) < 2 || args[1] != "add" {
			return errors.New("usage: switchboard agent add --email E --name N [--role R] [--skills a,b] [--password P]")
		}
		return runAgentAdd(ctx, args[2:], stdout, stderr)
	case "site":
		if len(args) < 2 || args[1] != "add" {
			return errors.New("usage: switchboard site add --name N --origin https://shop.example [--origin ...] [--team T]")
		}
		return runSiteAdd(ctx, args[2:], stdout, stderr)
	case "bench":
		if len(args) > 1 && args[1] == "route" {
			return runBenchRoute(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "sockets" {
			return runBenchSockets(ctx, args[2:], stdout, stderr)
		}
		return runBench(ctx, args[1:], stdout, stderr)
	case "classifier":
		return runClassifier(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	m := &Main{}
	m.Config.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := m.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}

// openInbox opens only the inbox over the configured database, for the
// commands that need no server.
func openInbox(ctx context.Context, name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*inbox.Service, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	c.Bind(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return inbox.Open(ctx, inbox.Config{DatabaseURL: c.DatabaseURL})
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	db, err := openInbox(ctx, "migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "database (%s) is up to date\n", db.Dialect())
	return nil
}

func runAgentAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email, name, role, skills, teams, password string
	db, err := openInbox(ctx, "agent add", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&password, "password", "", "a password to sign in to the workspace with (at least 10 characters; without it the agent uses its API token only)")
		fs.StringVar(&email, "email", "", "the agent's e-mail address (required)")
		fs.StringVar(&name, "name", "", "the agent's name (required)")
		fs.StringVar(&role, "role", string(switchboard.RoleAgent), "agent, supervisor or admin")
		fs.StringVar(&skills, "skills", "", "comma-separated skills (topics)")
		fs.StringVar(&teams, "teams", "", "comma-separated teams")
	})
	if err != nil {
		return err
	}
	defer db.Close()
	if password != "" {
		if _, err := inbox.HashPassword(password); err != nil {
			return fmt.Errorf("add agent: %s", switchboard.ErrorMessage(err))
		}
	}
	a, token, err := db.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: name, Email: email, Role: switchboard.Role(role), Skills: splitList(skills), Teams: splitList(teams)})
	if err != nil {
		if switchboard.ErrorCode(err) == switchboard.EINTERNAL {
			return fmt.Errorf("add agent: %w", err)
		}
		return fmt.Errorf("add agent: %s", switchboard.ErrorMessage(err))
	}
	if password != "" {
		if err := db.SetPassword(ctx, switchboard.System, a.ID, password); err != nil {
			return fmt.Errorf("agent %s was created without a password: %s", a.Email, switchboard.ErrorMessage(err))
		}
	}
	fmt.Fprintf(stdout, "created %s %s <%s> with id %s; API token:\n%s\n", a.Role, a.Name, a.Email, a.ID, token)
	return nil
}

// runSiteAdd adds a live-chat site and prints its key and then its
// secret, each alone on the last two lines of standard output.
func runSiteAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var name, team string
	var origins []string
	db, err := openInbox(ctx, "site add", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "the site's name (required)")
		fs.Func("origin", "an origin the widget runs on, https://shop.example (required; repeat for more)", func(v string) error {
			origins = append(origins, splitList(v)...)
			return nil
		})
		fs.StringVar(&team, "team", "", "the team whose agents and hours make the widget's status (default: the default team)")
	})
	if err != nil {
		return err
	}
	defer db.Close()
	site, err := db.AddSite(ctx, switchboard.System, switchboard.Site{Name: name, Origins: origins, Team: team})
	if err != nil {
		if switchboard.ErrorCode(err) == switchboard.EINTERNAL {
			return fmt.Errorf("add site: %w", err)
		}
		return fmt.Errorf("add site: %s", switchboard.ErrorMessage(err))
	}
	fmt.Fprintf(stdout, "created site %s for %s; embed <script src=\".../widget.js\" data-site=\"%s\" async></script>\nkey and secret (the secret signs user ids; it is not shown again):\n%s\n%s\n",
		site.Name, strings.Join(site.Origins, ", "), site.Key, site.Key, site.Secret)
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
