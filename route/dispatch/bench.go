package dispatch

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/inbox"
	"github.com/switchboard-inbox/switchboard/route"
)

// BenchOptions size the routing benchmark.
type BenchOptions struct {
	Agents        int    // online agents (500)
	Conversations int    // waiting conversations (10,000)
	Seed          uint64 // the same seed gives the same workload
}

// Spread describes how evenly a class of conversations is spread over the
// online agents.
type Spread struct {
	Min, Max int
	Mean     float64
	StdDev   float64
}

// BenchResult is what one benchmark run measured.
type BenchResult struct {
	Backend         string
	Agents          int
	Conversations   int
	Assigned        int
	Waiting         int
	Decisions       int           // conversations decided (deciding and, if so, assigning)
	Elapsed         time.Duration // the whole pass, queue reads included
	DecisionsPerSec float64
	P50, P99, Max   time.Duration // per decision
	Chat, Email     Spread        // active conversations per online agent afterwards
}

func (r BenchResult) String() string {
	return fmt.Sprintf("%s: %d agents, %d waiting: %d assigned, %d left waiting in %v; %.0f decisions/s; per decision p50 %v p99 %v max %v; chats per agent min %d max %d mean %.2f sd %.2f; e-mails per agent min %d max %d mean %.2f sd %.2f",
		r.Backend, r.Agents, r.Conversations, r.Assigned, r.Waiting, r.Elapsed.Round(time.Millisecond), r.DecisionsPerSec,
		r.P50, r.P99, r.Max, r.Chat.Min, r.Chat.Max, r.Chat.Mean, r.Chat.StdDev, r.Email.Min, r.Email.Max, r.Email.Mean, r.Email.StdDev)
}

// Bench seeds an empty store with agents (varied skills, default caps)
// and waiting conversations (varied topics and channels, text from
// route.SampleConversations), trains a classifier and sets keyword rules,
// then times one routing pass over the whole queue. `switchboard bench
// route` calls it.
func Bench(ctx context.Context, db *inbox.Service, o BenchOptions) (BenchResult, error) {
	if o.Agents <= 0 {
		o.Agents = 500
	}
	if o.Conversations <= 0 {
		o.Conversations = 10000
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5851f42d4c957f2d))
	res := BenchResult{Backend: db.Dialect(), Agents: o.Agents, Conversations: o.Conversations}

	topics := route.SampleTopics
	for i := 0; i < o.Agents; i++ {
		var skills []string
		for _, t := range topics {
			if r.IntN(3) == 0 {
				skills = append(skills, fmt.Sprintf("%s:%d", t, 1+r.IntN(5)))
			}
		}
		a, _, err := db.AddAgent(ctx, switchboard.System, switchboard.Agent{Name: fmt.Sprintf("Agent %03d", i), Email: fmt.Sprintf("bench-agent-%d@bench.example", i), Skills: skills})
		if err != nil {
			return res, fmt.Errorf("dispatch: bench: %w", err)
		}
		if _, err := db.SetAgentStatus(ctx, switchboard.System, a.ID, switchboard.AgentOnline); err != nil {
			return res, fmt.Errorf("dispatch: bench: %w", err)
		}
	}

	keywords := []route.KeywordRule{
		{Topic: "billing", Keywords: []string{"invoice", "charged twice"}},
		{Topic: "shipping", Keywords: []string{"tracking number"}},
	}
	if _, err := db.PutRoutingConfig(ctx, switchboard.System, inbox.RoutingConfig{Keywords: keywords}); err != nil {
		return res, fmt.Errorf("dispatch: bench: %w", err)
	}
	model, err := route.Train(route.SampleConversations(o.Seed+1, 3000)).MarshalBinary()
	if err != nil {
		return res, fmt.Errorf("dispatch: bench: %w", err)
	}
	if _, err := db.SaveClassifier(ctx, model, 0, 3000); err != nil {
		return res, fmt.Errorf("dispatch: bench: %w", err)
	}

	docs := route.SampleConversations(o.Seed, o.Conversations)
	const chunk = 500
	for start := 0; start < len(docs); start += chunk {
		var items []switchboard.Inbound
		for i := start; i < min(start+chunk, len(docs)); i++ {
			ch := switchboard.Channels[r.IntN(len(switchboard.Channels))]
			id := switchboard.IdentityRef{Kind: switchboard.IdentityPhone, Value: fmt.Sprintf("+1555%07d", i)}
			if ch.Class() == switchboard.ClassEmail {
				id = switchboard.IdentityRef{Kind: switchboard.IdentityEmail, Value: fmt.Sprintf("bench-%d@customer.example", i)}
			}
			items = append(items, switchboard.Inbound{Channel: ch, ProviderID: fmt.Sprintf("bench-%d", i), Identities: []switchboard.IdentityRef{id},
				// SampleConversations' typos can split a multi-byte character,
				// which PostgreSQL refuses (reported to route's author).
				ContentType: switchboard.ContentText, Text: docs[i].Text})
		}
		results, err := db.Ingest(ctx, items)
		if err != nil {
			return res, fmt.Errorf("dispatch: bench: seed: %w", err)
		}
		for _, ir := range results {
			if ir.Err != nil {
				return res, fmt.Errorf("dispatch: bench: seed: %w", ir.Err)
			}
		}
	}
	if err := db.Analyze(ctx); err != nil {
		return res, fmt.Errorf("dispatch: bench: %w", err)
	}

	var lat []time.Duration
	d := &Dispatcher{Inbox: db, observe: func(dt time.Duration) { lat = append(lat, dt) }}
	start := time.Now()
	res.Assigned, res.Waiting, err = d.RouteOnce(ctx)
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("dispatch: bench: route: %w", err)
	}
	res.Decisions = len(lat)
	res.DecisionsPerSec = float64(len(lat)) / res.Elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		res.Max = lat[len(lat)-1]
	}
	agents, err := db.RoutingAgents(ctx)
	if err != nil {
		return res, fmt.Errorf("dispatch: bench: %w", err)
	}
	var chats, emails []int
	for _, a := range agents {
		if a.Status == switchboard.AgentOnline {
			chats = append(chats, a.Active[switchboard.ClassChat])
			emails = append(emails, a.Active[switchboard.ClassEmail])
		}
	}
	res.Chat, res.Email = spread(chats), spread(emails)
	return res, nil
}

func spread(v []int) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := Spread{Min: slices.Min(v), Max: slices.Max(v)}
	for _, x := range v {
		s.Mean += float64(x)
	}
	s.Mean /= float64(len(v))
	for _, x := range v {
		s.StdDev += (float64(x) - s.Mean) * (float64(x) - s.Mean)
	}
	s.StdDev = math.Sqrt(s.StdDev / float64(len(v)))
	return s
}
