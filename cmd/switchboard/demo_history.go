package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/outbox"
	"github.com/switchboard-inbox/switchboard/route"
)

// The demo's past week, so that its analytics have something to show from
// the first minute: conversations on every channel, answered and resolved
// by the demo agents during their shifts, some customers coming back on
// another channel. It is written through the inbox like live traffic, on a
// clock that walks through the week, before the demo starts serving; the
// replies are marked sent by an outbox with senders that accept them all.

// historyClock is a clock the seeding moves.
type historyClock struct{ t time.Time }

func (c *historyClock) Now() time.Time { return c.t }

// acceptAll stands in for the providers while the past is written.
type acceptAll struct{}

func (acceptAll) Send(context.Context, *switchboard.Outbound) (string, error) {
	return "", nil
}

type historyEvent struct {
	at  time.Time
	run func(ctx context.Context) error
}

// seedDemoData writes the demo team (seedDemo) and its past week into the
// database at databaseURL, leaving the agents online now. It returns the
// admin's token and the other agents.
func seedDemoData(ctx context.Context, databaseURL string, logger *slog.Logger, now time.Time) (string, []demoAgent, error) {
	clock := &historyClock{t: now.Add(-7 * 24 * time.Hour).Truncate(24 * time.Hour)}
	svc, err := inbox.Open(ctx, inbox.Config{DatabaseURL: databaseURL, Clock: clock, Logger: logger})
	if err != nil {
		return "", nil, fmt.Errorf("demo data: %w", err)
	}
	defer svc.Close()
	token, agents, err := seedDemo(ctx, svc)
	if err != nil {
		return "", nil, err
	}
	if err := seedDemoHistory(ctx, svc, clock, agents, now); err != nil {
		return "", nil, err
	}
	clock.t = now
	for _, a := range agents {
		if _, err := svc.SetAgentStatus(ctx, switchboard.System, a.ID, switchboard.AgentOnline); err != nil {
			return "", nil, fmt.Errorf("demo data: %w", err)
		}
	}
	return token, agents, nil
}

// seedDemoHistory writes the past week, from the clock's time to now.
func seedDemoHistory(ctx context.Context, svc *inbox.Service, clock *historyClock, agents []demoAgent, now time.Time) error {
	admin := switchboard.System
	senders := outbox.SenderMap{}
	for _, ch := range switchboard.Channels {
		svc.SetChannel(ch, nil, acceptAll{})
		senders[ch] = acceptAll{}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var events []historyEvent
	add := func(at time.Time, run func(ctx context.Context) error) {
		if at.Before(now) {
			events = append(events, historyEvent{at, run})
		}
	}
	start := clock.t
	// Shifts: each agent online 08:00-17:00 or 12:00-21:00 UTC.
	for d := range 8 {
		day := start.Add(time.Duration(d) * 24 * time.Hour)
		for i, a := range agents {
			from := day.Add(time.Duration(8+4*(i%2)) * time.Hour)
			add(from, func(ctx context.Context) error {
				_, err := svc.SetAgentStatus(ctx, admin, a.ID, switchboard.AgentOnline)
				return err
			})
			add(from.Add(9*time.Hour), func(ctx context.Context) error {
				_, err := svc.SetAgentStatus(ctx, admin, a.ID, switchboard.AgentOffline)
				return err
			})
		}
	}
	type who struct {
		ch   switchboard.Channel
		kind switchboard.IdentityKind
	}
	kinds := []who{
		{switchboard.ChannelSMS, switchboard.IdentityPhone}, {switchboard.ChannelWhatsApp, switchboard.IdentityPhone},
		{switchboard.ChannelEmail, switchboard.IdentityEmail}, {switchboard.ChannelWebform, switchboard.IdentityEmail},
		{switchboard.ChannelMessenger, switchboard.IdentityMessengerPSID}, {switchboard.ChannelInstagram, switchboard.IdentityInstagramID},
	}
	topics := []struct{ topic, text string }{
		{"shipping", "Where is my parcel? The tracking has not moved."},
		{"billing", "I was charged twice for my order, can I get a refund?"},
		{"returns", "How do I return these shoes? I need a label."},
		{"", "Do you ship to Canada?"},
	}
	n := 0
	for d := range 7 {
		day := start.Add(time.Duration(d) * 24 * time.Hour)
		for range 14 + rng.IntN(8) {
			n++
			n := n
			at := day.Add(time.Duration(7*60+rng.IntN(15*60)) * time.Minute)
			k := kinds[rng.IntN(len(kinds))]
			t := topics[rng.IntN(len(topics))]
			id := demoIdentity(k.kind, n)
			agent := agents[rng.IntN(len(agents))]
			// Chat-like channels are answered in minutes, social within
			// the hour, e-mail within hours; a few wait much longer.
			delay := time.Duration(10+rng.IntN(110)) * time.Second
			switch k.ch.Class() {
			case switchboard.ClassEmail:
				delay = time.Duration(10+rng.IntN(300)) * time.Minute
			}
			if k.ch == switchboard.ChannelMessenger || k.ch == switchboard.ChannelInstagram {
				delay = time.Duration(2+rng.IntN(70)) * time.Minute
			}
			if rng.IntN(12) == 0 {
				delay *= 8
			}
			var conv string
			add(at, func(ctx context.Context) error {
				res, err := svc.Ingest(ctx, []switchboard.Inbound{{Channel: k.ch, ProviderID: fmt.Sprintf("demo-history-%d", n),
					Identities: []switchboard.IdentityRef{id}, SenderName: fmt.Sprintf("Customer %d", n), ContentType: "text", Text: t.text}})
				if err != nil {
					return err
				}
				conv = res[0].ConversationID
				return nil
			})
			add(at.Add(delay/2), func(ctx context.Context) error {
				// Assigned as the router would, with the topic its
				// keyword rules give.
				// An agent off shift is refused: the conversation stays
				// in the queue, as it would have.
				_ = svc.AssignRouted(ctx, route.Assignment{ConversationID: conv, AgentID: agent.ID, Rule: "workload", Reason: "demo history", Topic: t.topic, TopicSource: route.TopicByKeyword})
				return nil
			})
			add(at.Add(delay), func(ctx context.Context) error {
				_, err := svc.Reply(ctx, switchboard.Actor{ID: agent.ID, Role: switchboard.RoleAgent}, switchboard.Reply{ConversationID: conv, Text: "Thanks, I am on it."})
				return err
			})
			if rng.IntN(10) < 9 {
				resolved := at.Add(delay + time.Duration(5+rng.IntN(120))*time.Minute)
				add(resolved, func(ctx context.Context) error {
					_, err := svc.SetStatus(ctx, admin, conv, switchboard.StatusResolved)
					return err
				})
				// The survey goes out a minute later; most people on
				// chat-like channels answer it.
				add(resolved.Add(time.Minute), func(ctx context.Context) error {
					_, err := svc.SendDueSurveys(ctx, inbox.SurveyConfig{Delay: time.Minute})
					return err
				})
				if k.kind != switchboard.IdentityEmail && rng.IntN(10) < 6 {
					rating := []string{"5", "5", "4", "4", "5", "3", "4", "2", "5", "1"}[rng.IntN(10)]
					add(resolved.Add(time.Duration(3+rng.IntN(30))*time.Minute), func(ctx context.Context) error {
						_, err := svc.Ingest(ctx, []switchboard.Inbound{{Channel: k.ch, ProviderID: fmt.Sprintf("demo-history-%d-rating", n),
							Identities: []switchboard.IdentityRef{id}, ContentType: "text", Text: rating}})
						return err
					})
				}
			}
			// Some come back on another channel (the same phone number).
			if k.kind == switchboard.IdentityPhone && rng.IntN(4) == 0 {
				other := switchboard.ChannelSMS
				if k.ch == switchboard.ChannelSMS {
					other = switchboard.ChannelWhatsApp
				}
				again := at.Add(delay + 30*time.Minute)
				add(again, func(ctx context.Context) error {
					_, err := svc.Ingest(ctx, []switchboard.Inbound{{Channel: other, ProviderID: fmt.Sprintf("demo-history-%d-again", n),
						Identities: []switchboard.IdentityRef{id}, ContentType: "text", Text: "One more thing about my order."}})
					return err
				})
				add(again.Add(4*time.Minute), func(ctx context.Context) error {
					_, err := svc.Reply(ctx, switchboard.Actor{ID: agent.ID, Role: switchboard.RoleAgent}, switchboard.Reply{ConversationID: conv, Text: "Of course."})
					return err
				})
			}
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	w := &outbox.Worker{Inbox: svc, Senders: senders, Clock: clock, Logger: slog.New(slog.DiscardHandler)}
	for _, e := range events {
		clock.t = e.at
		if err := e.run(ctx); err != nil {
			return fmt.Errorf("demo history at %s: %w", e.at.Format(time.RFC3339), err)
		}
	}
	clock.t = now
	for {
		sent, err := w.RunOnce(ctx)
		if err != nil {
			return fmt.Errorf("demo history: send: %w", err)
		}
		if sent == 0 {
			return nil
		}
	}
}

func demoIdentity(kind switchboard.IdentityKind, n int) switchboard.IdentityRef {
	switch kind {
	case switchboard.IdentityPhone:
		return switchboard.IdentityRef{Kind: kind, Value: fmt.Sprintf("+1415555%04d", 3000+n)}
	case switchboard.IdentityEmail:
		return switchboard.IdentityRef{Kind: kind, Value: fmt.Sprintf("customer%d@example.com", n)}
	}
	return switchboard.IdentityRef{Kind: kind, Value: fmt.Sprintf("69228912%08d", n)}
}
