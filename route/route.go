package route

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Rule names, as they appear in TeamConfig.Rules, Decision.Rule and Step.Rule.
const (
	RuleContinuity    = "continuity"
	RuleBusinessHours = "business_hours"
	RuleAvailability  = "availability"
	RuleSkills        = "skills"
	RuleWorkload      = "workload"
)

// DefaultRules is the order a team uses when its configuration names none.
var DefaultRules = []string{RuleContinuity, RuleBusinessHours, RuleAvailability, RuleSkills, RuleWorkload}

// After-hours and skill-fallback modes of a TeamConfig.
const (
	AfterHoursQueue = "queue" // hold in the queue and acknowledge once
	AfterHoursTeam  = "team"  // hand to TeamConfig.AfterHoursTeam
	FallbackAny     = "any"   // no skilled agent: any available agent
	FallbackWait    = "wait"  // no skilled agent: wait for one
)

// Default caps and weights per channel class.
const (
	DefaultChatCap     = 6
	DefaultEmailCap    = 15
	DefaultChatWeight  = 1.0
	DefaultEmailWeight = 0.4
)

// Agent is the router's view of one agent at decision time.
type Agent struct {
	ID, Name  string
	Status    switchboard.AgentStatus
	Skills    map[string]int                   // topic -> proficiency 1..5
	Teams     []string                         // none = the default team ""
	Caps      map[switchboard.ChannelClass]int // 0 or missing = default (6 chat, 15 email)
	Active    map[switchboard.ChannelClass]int // open conversations assigned now, per class
	IdleSince time.Time                        // last assignment (or coming online); older = idle longer
}

// ParseSkills turns the stored form ["billing:3", "shipping"] into
// {"billing": 3, "shipping": 1}. Topics are lower-cased; a proficiency that
// is missing or not a number is 1, and it is clamped to 1..5, so that no
// stored value can make an agent unskilled by accident.
func ParseSkills(s []string) map[string]int {
	m := make(map[string]int, len(s))
	for _, v := range s {
		topic, level, found := strings.Cut(v, ":")
		topic = strings.ToLower(strings.TrimSpace(topic))
		if topic == "" {
			continue
		}
		p := 1
		if found {
			if n, err := strconv.Atoi(strings.TrimSpace(level)); err == nil {
				p = min(max(n, 1), 5)
			}
		}
		if p > m[topic] {
			m[topic] = p
		}
	}
	return m
}

// inTeam reports whether a serves team: agents without teams serve the
// default team "".
func (a *Agent) inTeam(team string) bool { return ServesTeam(a.Teams, team) }

// ServesTeam reports whether an agent of teams serves team: agents
// without teams serve the default team "".
func ServesTeam(teams []string, team string) bool {
	if len(teams) == 0 {
		return team == ""
	}
	return slices.Contains(teams, team)
}

// Cap returns the agent's cap for class c, defaults applied.
func (a *Agent) Cap(c switchboard.ChannelClass) int {
	if n := a.Caps[c]; n > 0 {
		return n
	}
	if c == switchboard.ClassEmail {
		return DefaultEmailCap
	}
	return DefaultChatCap
}

// Fits reports whether one more conversation of class c fits under a's cap.
func Fits(a Agent, c switchboard.ChannelClass) bool { return a.fits(c) }

func (a *Agent) fits(c switchboard.ChannelClass) bool { return a.Active[c] < a.Cap(c) }

// Request is one conversation to place.
type Request struct {
	ConversationID  string
	Channel         switchboard.Channel // the conversation's last channel: decides the class
	Team            string              // the conversation's team ("" = default team)
	Topic           string              // already known topic, kept if set
	Text            string              // the customer's recent inbound text, for topic detection
	ContinuityAgent string              // the agent who has this customer, "" if none
	Now             time.Time
}

// Outcome is what the dispatcher must do with a Decision.
type Outcome string

const (
	Assign  Outcome = "assign"  // give to Decision.AgentID
	Wait    Outcome = "wait"    // nobody qualifies now: keep in the queue
	Handoff Outcome = "handoff" // move to Decision.Team (after-hours team) and route again there
)

// Step is one line of a decision's explanation.
type Step struct {
	Rule       string `json:"rule"`
	Reason     string `json:"reason"`
	Candidates int    `json:"candidates"` // agents still in the running after the rule
}

// Decision is the router's answer for one Request.
type Decision struct {
	Outcome     Outcome
	AgentID     string
	Team        string  // for Handoff: the after-hours team
	Topic       string  // detected or kept topic ("" unknown)
	TopicSource string  // "kept", "keyword", "classifier", ""
	Confidence  float64 // classifier confidence when TopicSource=="classifier"
	Rule        string  // the rule that decided
	Reason      string  // one human-readable sentence
	AfterHours  bool    // waiting because the team is closed: the dispatcher sends one acknowledgement
	Trace       []Step
}

// TeamConfig is one team's routing configuration (JSON-encodable, stored by
// the dispatcher). The zero value routes with DefaultRules, always open.
type TeamConfig struct {
	Rules          []string                             `json:"rules"`
	Hours          *Schedule                            `json:"hours,omitempty"` // nil = always open
	AfterHours     string                               `json:"after_hours"`     // "queue" (default) or "team"
	AfterHoursTeam string                               `json:"after_hours_team,omitempty"`
	Ack            map[string]string                    `json:"ack,omitempty"`     // channel -> acknowledgement text; "" key = default
	SkillFallback  string                               `json:"skill_fallback"`    // "any" (default) or "wait"
	Weights        map[switchboard.ChannelClass]float64 `json:"weights,omitempty"` // default chat 1.0, email 0.4
}

// Validate reports the first problem in c, as an EINVALID error.
func (c TeamConfig) Validate() error {
	seen := make(map[string]bool, len(c.Rules))
	for _, r := range c.Rules {
		switch r {
		case RuleContinuity, RuleBusinessHours, RuleAvailability, RuleSkills, RuleWorkload:
		default:
			return switchboard.Errorf(switchboard.EINVALID, "route: unknown rule %q (want one of %s)", r, strings.Join(DefaultRules, ", "))
		}
		if seen[r] {
			return switchboard.Errorf(switchboard.EINVALID, "route: rule %q listed twice", r)
		}
		seen[r] = true
	}
	switch c.AfterHours {
	case "", AfterHoursQueue:
	case AfterHoursTeam:
		if c.AfterHoursTeam == "" {
			return switchboard.Errorf(switchboard.EINVALID, "route: after_hours is %q but after_hours_team is empty", AfterHoursTeam)
		}
	default:
		return switchboard.Errorf(switchboard.EINVALID, "route: after_hours %q: want %q or %q", c.AfterHours, AfterHoursQueue, AfterHoursTeam)
	}
	switch c.SkillFallback {
	case "", FallbackAny, FallbackWait:
	default:
		return switchboard.Errorf(switchboard.EINVALID, "route: skill_fallback %q: want %q or %q", c.SkillFallback, FallbackAny, FallbackWait)
	}
	for class, w := range c.Weights {
		if w < 0 || w != w {
			return switchboard.Errorf(switchboard.EINVALID, "route: weight of %s is %v: want a number >= 0", class, w)
		}
	}
	return nil
}

// ValidateTeams checks each team's configuration (Validate) and that
// after-hours hand-offs end: following after_hours_team from any team must
// never come back to a team already passed (nor to the team itself), or a
// conversation arriving while they are all closed would be handed round
// for ever. Errors are EINVALID and name the team or the cycle.
func ValidateTeams(teams map[string]TeamConfig) error {
	names := make([]string, 0, len(teams))
	for t := range teams {
		names = append(names, t)
	}
	slices.Sort(names) // the same configuration, the same first error
	for _, t := range names {
		if err := teams[t].Validate(); err != nil {
			return switchboard.Errorf(switchboard.EINVALID, "team %q: %s", t, switchboard.ErrorMessage(err))
		}
	}
	for _, start := range names {
		path := []string{start}
		for t := start; ; {
			c := teams[t]
			if c.AfterHours != AfterHoursTeam || c.AfterHoursTeam == "" {
				break
			}
			next := c.AfterHoursTeam
			if i := slices.Index(path, next); i >= 0 {
				return switchboard.Errorf(switchboard.EINVALID,
					"route: after-hours hand-offs go round in a cycle (%s): while these teams are all closed a conversation would never settle; end the chain with a team whose after_hours is %q",
					HandoffPath(append(path[i:], next)), AfterHoursQueue)
			}
			path = append(path, next)
			t = next
		}
	}
	return nil
}

// HandoffPath writes a chain of teams as "default → night → weekend".
func HandoffPath(teams []string) string {
	var b strings.Builder
	for i, t := range teams {
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(teamName(t))
	}
	return b.String()
}

// weight returns the weight of one conversation of class cl.
func (c *TeamConfig) weight(cl switchboard.ChannelClass) float64 {
	if w, ok := c.Weights[cl]; ok {
		return w
	}
	if cl == switchboard.ClassEmail {
		return DefaultEmailWeight
	}
	return DefaultChatWeight
}

// Load is the weighted load of an agent: its active conversations, a chat
// counting more than an email because it asks for quicker replies.
func (c TeamConfig) Load(a Agent) float64 { return c.load(&a) }

func (c *TeamConfig) load(a *Agent) float64 {
	var l float64
	for cl, n := range a.Active {
		if n > 0 {
			l += float64(n) * c.weight(cl)
		}
	}
	return l
}

// AckText is the automatic acknowledgement sent once when a conversation
// waits because the team is closed: the text configured for the channel,
// else the "" default, else a built-in sentence. "{next_open}" in the text
// is replaced by the next opening time in the team's time zone (nextOpen
// zero: "as soon as we can" wording).
func (c TeamConfig) AckText(ch switchboard.Channel, nextOpen time.Time) string {
	text, ok := c.Ack[string(ch)]
	if !ok || text == "" {
		text = c.Ack[""]
	}
	when := "as soon as we can"
	if !nextOpen.IsZero() {
		when = formatOpen(c.Hours, nextOpen)
	}
	if text == "" {
		if nextOpen.IsZero() {
			return "Thanks for your message. We're closed right now and will reply as soon as we can."
		}
		return "Thanks for your message. We're closed right now and will reply when we open at " + when + "."
	}
	return strings.ReplaceAll(text, "{next_open}", when)
}

// formatOpen writes an opening time as "Mon 09:00 (Europe/Paris)", adding
// the date when it is more than six days away.
func formatOpen(s *Schedule, t time.Time) string {
	loc := time.UTC
	if s != nil {
		loc = s.Location()
	}
	lt := t.In(loc)
	return lt.Format("Mon 15:04") + " (" + loc.String() + ")"
}

// Router holds the configuration the rules read. Safe for concurrent use
// once built: Decide only reads it.
type Router struct {
	Teams  map[string]TeamConfig // "" key = default team; a team without an entry uses the zero TeamConfig
	Topics *Topics               // may be nil: no topic detection
}

// config returns the team's configuration.
func (r *Router) config(team string) TeamConfig {
	return r.Teams[team]
}

// maxRules bounds the normalised rule list so it lives on the stack.
const maxRules = 8

// normRules returns the team's rule order with the invariants added:
// availability runs before skills and workload (nobody offline, outside the
// team or capped is ever picked), and workload ends the pipeline (someone
// must choose). Duplicates are dropped; unknown names are kept so the trace
// can say they were skipped.
func normRules(rules []string, buf *[maxRules]string) []string {
	if len(rules) == 0 {
		rules = DefaultRules
	}
	out := buf[:0]
	add := func(r string) {
		if len(out) < maxRules-1 && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, r := range rules {
		if r == RuleSkills || r == RuleWorkload {
			add(RuleAvailability)
		}
		add(r)
	}
	add(RuleAvailability)
	if !slices.Contains(out, RuleWorkload) {
		out = append(out, RuleWorkload)
	}
	return out
}
