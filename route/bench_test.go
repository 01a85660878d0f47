package route_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// benchAgents returns n agents spread over three teams and the default
// team, with varied skills, statuses and loads.
func benchAgents(n int) []route.Agent {
	r := rand.New(rand.NewPCG(1, 2))
	teamSets := [][]string{nil, {"support"}, {"support", "sales"}, {"night"}}
	statuses := []switchboard.AgentStatus{switchboard.AgentOnline, switchboard.AgentOnline, switchboard.AgentOnline, switchboard.AgentAway, switchboard.AgentOffline}
	agents := make([]route.Agent, n)
	for i := range agents {
		var sk []string
		for _, t := range route.SampleTopics {
			if r.IntN(3) == 0 {
				sk = append(sk, fmt.Sprintf("%s:%d", t, 1+r.IntN(5)))
			}
		}
		agents[i] = route.Agent{
			ID: fmt.Sprintf("agent-%04d", i), Name: fmt.Sprintf("Agent %d", i),
			Status:    statuses[r.IntN(len(statuses))],
			Skills:    route.ParseSkills(sk),
			Teams:     teamSets[r.IntN(len(teamSets))],
			Active:    map[switchboard.ChannelClass]int{switchboard.ClassChat: r.IntN(7), switchboard.ClassEmail: r.IntN(16)},
			IdleSince: t0.Add(-time.Duration(r.IntN(3600)) * time.Second),
		}
	}
	return agents
}

// BenchmarkDecide places one conversation among 500 agents with the
// default rules: with a kept topic, and with the topic detected from the
// text by keywords or the classifier.
func BenchmarkDecide(b *testing.B) {
	agents := benchAgents(500)
	train, _ := split(b)
	paris := mustSchedule(b, officeParis)
	r := route.Router{
		Teams: map[string]route.TeamConfig{"support": {Hours: paris}},
		Topics: &route.Topics{
			Keywords:   []route.KeywordRule{{Topic: "billing", Keywords: []string{"invoice", "charged twice"}}},
			Classifier: route.Train(train),
		},
	}
	cases := []struct {
		name string
		req  route.Request
	}{
		{"continuity", route.Request{Channel: switchboard.ChannelWhatsApp, Team: "support", ContinuityAgent: "agent-0250", Now: t0}},
		{"kept-topic", route.Request{Channel: switchboard.ChannelWhatsApp, Team: "support", Topic: "shipping", Now: t0}},
		{"keyword", route.Request{Channel: switchboard.ChannelEmail, Team: "support", Text: "Hi, can I get an invoice for order 12345?", Now: t0}},
		{"classifier", route.Request{Channel: switchboard.ChannelLivechat, Team: "support", Text: "Hi, my parcel still hasn't arrived and the tracking page shows nothing", Now: t0}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var d route.Decision
			for b.Loop() {
				d = r.Decide(c.req, agents)
			}
			if d.Outcome != route.Assign {
				b.Fatalf("%s: %s", d.Outcome, d.Reason)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

func BenchmarkPredict(b *testing.B) {
	train, test := split(b)
	c := route.Train(train)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Predict(test[i%len(test)].Text)
		i++
	}
}

func BenchmarkTrain(b *testing.B) {
	docs := route.SampleConversations(42, 2000)
	b.ReportAllocs()
	for b.Loop() {
		route.Train(docs)
	}
}
