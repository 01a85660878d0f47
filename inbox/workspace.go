package inbox

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/identity"
	"github.com/switchboard-inbox/switchboard/store"
	"github.com/switchboard-inbox/switchboard/view"
)

// What the workspace's pages show beyond the API's answers (docs/design.md
// §6.3): inbox rows with a preview, and the counts in the header.

// Row is a conversation as the inbox lists it.
type Row struct {
	view.Conversation
	// Display names the customer: their name, else their phone number
	// formatted, else their address; never blank.
	Display string
	// Preview is the start of the last message that is no note, and
	// PreviewIn whether the customer wrote it.
	Preview   string
	PreviewIn bool
	// WaitingSince is when the customer's unanswered message came, for
	// an open conversation whose customer wrote last; zero otherwise.
	WaitingSince time.Time
}

// PreviewLen is how many characters of the last message a row shows.
const PreviewLen = 120

// InboxRows returns a page of conversations as the inbox lists them: the
// same filter and order as Conversations, with a fixed number of queries
// per page.
func (s *Service) InboxRows(ctx context.Context, actor switchboard.Actor, f switchboard.ConversationFilter) ([]Row, string, error) {
	convs, next, err := s.Conversations(ctx, actor, f)
	if err != nil {
		return nil, "", err
	}
	plain := make([]switchboard.Conversation, len(convs))
	for i, c := range convs {
		plain[i] = switchboard.Conversation{ID: c.ID, CustomerID: c.Customer.ID}
	}
	sums, err := s.store.Summaries(ctx, plain)
	if err != nil {
		return nil, "", err
	}
	rows := make([]Row, len(convs))
	for i, c := range convs {
		sum := sums[c.ID]
		r := Row{Conversation: c, Display: DisplayName(c.Customer.Name, sum.IdentityKind, sum.Identity), Preview: preview(sum.Text), PreviewIn: sum.Direction == switchboard.DirectionIn}
		if c.Status == switchboard.StatusOpen && !c.LastInboundAt.IsZero() && !c.LastInboundAt.Before(c.LastMessageAt.Time) {
			r.WaitingSince = c.LastInboundAt.Time
		}
		rows[i] = r
	}
	return rows, next, nil
}

// DisplayName names a customer for people: the name they gave, else the
// identity that reached us (a phone number formatted), else "Customer".
func DisplayName(name string, kind switchboard.IdentityKind, value string) string {
	if name = strings.TrimSpace(name); name != "" {
		return name
	}
	switch {
	case kind == switchboard.IdentityPhone:
		return identity.FormatPhone(value)
	case value != "":
		return value
	}
	return "Customer"
}

func preview(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= PreviewLen {
		return text
	}
	r := []rune(text)
	return string(r[:PreviewLen-1]) + "…"
}

// Counts are the header's figures for an agent, each counted up to
// CountCap.
type Counts struct {
	// Unread: the agent's open conversations whose customer wrote last.
	Unread int
	// Waiting: open conversations nobody has, whose customer wrote last.
	Waiting int
}

// CountCap is where Counts stop counting: the page says "1000+".
const CountCap = store.CountCap

// Counts returns the header's figures for the actor.
func (s *Service) Counts(ctx context.Context, actor switchboard.Actor) (Counts, error) {
	mine, queue, err := s.store.WaitingCounts(ctx, actor.ID)
	return Counts{Unread: mine, Waiting: queue}, err
}

// ReplyOption is a channel the composer offers, with what its policy
// says now of a short text draft (an SMS opt-out, a closed window).
type ReplyOption struct {
	Channel  switchboard.Channel
	Decision switchboard.Decision
}

// replyKinds maps the identity kinds to the channels that reach them.
var replyKinds = []struct {
	kind switchboard.IdentityKind
	chs  []switchboard.Channel
}{
	{switchboard.IdentityEmail, []switchboard.Channel{switchboard.ChannelEmail}},
	{switchboard.IdentityPhone, []switchboard.Channel{switchboard.ChannelSMS, switchboard.ChannelWhatsApp}},
	{switchboard.IdentityMessengerPSID, []switchboard.Channel{switchboard.ChannelMessenger}},
	{switchboard.IdentityInstagramID, []switchboard.Channel{switchboard.ChannelInstagram}},
	{switchboard.IdentityChatVisitor, []switchboard.Channel{switchboard.ChannelLivechat}},
}

// ReplyOptions returns the channel a reply takes by default (the one
// Reply picks when none is named) and every channel the customer has an
// identity on, each with its policy's answer for a short text.
func (s *Service) ReplyOptions(ctx context.Context, actor switchboard.Actor, conversationID string) (switchboard.Channel, []ReplyOption, error) {
	c, err := s.store.GetConversation(ctx, conversationID)
	if err != nil {
		return "", nil, err
	}
	rec, err := s.store.Recipient(ctx, conversationID)
	if err != nil {
		return "", nil, err
	}
	def := s.replyChannel(c, rec)
	var opts []ReplyOption
	seen := map[switchboard.Channel]bool{}
	add := func(ch switchboard.Channel) {
		if seen[ch] {
			return
		}
		seen[ch] = true
		// A word of text: what the channel refuses whatever is typed,
		// not that an empty draft is empty.
		opts = append(opts, ReplyOption{Channel: ch, Decision: s.decideFor(c, rec, switchboard.Draft{Channel: ch, Text: "Hello"})})
	}
	add(def)
	for _, k := range replyKinds {
		if rec.Identity(k.kind) == "" {
			continue
		}
		for _, ch := range k.chs {
			add(ch)
		}
	}
	return def, opts, nil
}

// TeamNames lists the named teams of the routing configuration, sorted:
// every agent may filter the inbox by team, though only supervisors read
// the configuration itself.
func (s *Service) TeamNames(ctx context.Context, actor switchboard.Actor) ([]string, error) {
	c, err := s.store.GetRoutingConfig(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for team := range c.Teams {
		if team != "" {
			out = append(out, team)
		}
	}
	slices.Sort(out)
	return out, nil
}
