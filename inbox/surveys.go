package inbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/store"
)

// Satisfaction surveys (docs/metrics.md): one per resolved cycle, sent
// the survey delay after the resolution on the channel the customer last
// used, in that channel's form; the answer is recorded as the cycle's
// rating and is never a message of the conversation, nor reopens it.

// SurveyConfig says how surveys go out.
type SurveyConfig struct {
	// Delay is how long after a resolution the survey is sent.
	Delay time.Duration
	// PublicURL prefixes the rating and unsubscribe links of e-mail
	// surveys.
	PublicURL string
	// Template is the approved WhatsApp template sent outside the 24-hour
	// window (default "csat_survey"); without it no survey goes there.
	Template string
}

// surveyLookback bounds how late a due survey is still sent: a worker
// stopped for longer does not survey last week's customers all at once.
const surveyLookback = 24 * time.Hour

// surveyAnswerWindow is how long after a survey a bare rating is taken
// as its answer.
const surveyAnswerWindow = 7 * 24 * time.Hour

// SurveyText is what SMS, WhatsApp, Messenger, Instagram and live chat
// surveys say.
const SurveyText = "How did we do? Reply with a number from 1 (poor) to 5 (great)."

// SendDueSurveys sends the surveys that are due now and reports how many
// it claimed. Several instances may call it: each survey is claimed once.
func (s *Service) SendDueSurveys(ctx context.Context, cfg SurveyConfig) (int, error) {
	now := s.clock.Now()
	due, err := s.store.ClaimDueSurveys(ctx, now.Add(-cfg.Delay-surveyLookback), now.Add(-cfg.Delay).Add(time.Microsecond), 50)
	if err != nil {
		return 0, err
	}
	for _, sv := range due {
		ch, reason, err := s.sendSurvey(ctx, cfg, sv)
		state := store.SurveySent
		if err != nil {
			s.log.Warn("survey: not sent", "survey", sv.ID, "conversation", sv.ConversationID, "err", err)
			reason = "error: " + err.Error()
		}
		if reason != "" {
			state = store.SurveySkipped
		}
		if err := s.store.MarkSurvey(ctx, sv.ID, state, ch, reason); err != nil {
			return len(due), err
		}
	}
	return len(due), nil
}

// robotAddress matches addresses no person reads.
var robotAddress = regexp.MustCompile(`(?i)^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounces?|notifications?)([+.\-_@]|$)`)

// sendSurvey queues one survey and returns its channel, or the reason it
// was not sent.
func (s *Service) sendSurvey(ctx context.Context, cfg SurveyConfig, sv store.Survey) (switchboard.Channel, string, error) {
	last, err := s.store.LastInboundChannel(ctx, sv.ConversationID)
	if err != nil {
		return "", "", err
	}
	if last == "" {
		return "", "the customer never wrote", nil
	}
	ch := last.ReplyChannel()
	rec, err := s.store.Recipient(ctx, sv.ConversationID)
	if err != nil {
		return ch, "", err
	}
	if ch == switchboard.ChannelEmail || ch == switchboard.ChannelWebform {
		for _, id := range rec.Identities {
			if id.Kind == switchboard.IdentityEmail && robotAddress.MatchString(id.Value) {
				return ch, "an automated address", nil
			}
		}
		if rec.OptOuts[switchboard.ChannelEmail] != "" {
			return ch, "opted out of e-mail", nil
		}
	}
	meta := map[string]any{"survey": sv.ID}
	draft := switchboard.Draft{Channel: ch, Text: SurveyText}
	if ch == switchboard.ChannelMessenger || ch == switchboard.ChannelInstagram {
		// Buttons under the question; a tap sends the number back.
		meta["quick_replies"] = []string{"1", "2", "3", "4", "5"}
	}
	var htmlBody string
	if ch == switchboard.ChannelEmail || ch == switchboard.ChannelWebform {
		if s.linkKey == nil || cfg.PublicURL == "" {
			return ch, "e-mail surveys need the public URL and a secrets key for their links", nil
		}
		token := s.surveyToken(sv.ID)
		var text, links strings.Builder
		text.WriteString("How did we do? Click a rating:\n\n")
		for r := 1; r <= 5; r++ {
			u := fmt.Sprintf("%s/csat/%s?r=%d", cfg.PublicURL, token, r)
			fmt.Fprintf(&text, "%d - %s\n", r, u)
			fmt.Fprintf(&links, `<a href="%s" style="display:inline-block;padding:8px 14px;margin:2px;border:1px solid #ccc;border-radius:6px;text-decoration:none">%d</a>`, html.EscapeString(u), r)
		}
		text.WriteString("\n1 is poor, 5 is great. Thank you!")
		draft.Text = text.String()
		htmlBody = `<p>How did we do? Click a rating, 1 (poor) to 5 (great):</p><p>` + links.String() + `</p><p>Thank you!</p>`
		meta["unsubscribe"] = fmt.Sprintf("%s/csat/%s/unsubscribe", cfg.PublicURL, token)
	}
	dec, err := s.decide(ctx, sv.ConversationID, draft)
	if err != nil {
		return ch, "", err
	}
	if !dec.Allowed && ch == switchboard.ChannelWhatsApp {
		// Outside the 24-hour window: the approved survey template.
		name := cfg.Template
		if name == "" {
			name = "csat_survey"
		}
		for _, t := range rec.Templates {
			if t.Name == name {
				draft = switchboard.Draft{Channel: ch, Template: &switchboard.TemplateRef{Name: t.Name, Language: t.Language}}
				if dec, err = s.decide(ctx, sv.ConversationID, draft); err != nil {
					return ch, "", err
				}
				meta["template"] = draft.Template
				break
			}
		}
	}
	if !dec.Allowed {
		return ch, dec.Reason, nil
	}
	text := draft.Text
	if draft.Template != nil {
		text = dec.Text
	}
	b, _ := json.Marshal(meta)
	if _, err := s.queueAutomatic(ctx, store.Reply{ConversationID: sv.ConversationID, Channel: dec.Channel, Text: text, HTML: htmlBody, Metadata: b}); err != nil {
		return ch, "", err
	}
	return dec.Channel, "", nil
}

// surveyToken is the survey's id and a MAC of it, for e-mail links.
func (s *Service) surveyToken(id string) string {
	mac := hmac.New(sha256.New, s.linkKey)
	mac.Write([]byte("survey:" + id))
	return id + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// surveyFromToken checks a link's token and returns its survey.
func (s *Service) surveyFromToken(ctx context.Context, token string) (store.Survey, error) {
	id, _, ok := strings.Cut(token, ".")
	if !ok || s.linkKey == nil || !hmac.Equal([]byte(s.surveyToken(id)), []byte(token)) {
		return store.Survey{}, switchboard.Errorf(switchboard.ENOTFOUND, "this rating link is not valid")
	}
	return s.store.GetSurvey(ctx, id)
}

// RateByLink records the rating a customer clicked in an e-mail survey.
// It reports whether this click recorded it (false: it was rated before).
func (s *Service) RateByLink(ctx context.Context, token string, rating int) (bool, error) {
	if rating < 1 || rating > 5 {
		return false, switchboard.Errorf(switchboard.EINVALID, "a rating is from 1 to 5")
	}
	sv, err := s.surveyFromToken(ctx, token)
	if err != nil {
		return false, err
	}
	return s.store.AnswerSurvey(ctx, sv.ID, rating, switchboard.ChannelEmail, "")
}

// UnsubscribeByLink records that the customer wants no more surveys and
// other bulk-like mail (List-Unsubscribe, RFC 8058).
func (s *Service) UnsubscribeByLink(ctx context.Context, token string) error {
	sv, err := s.surveyFromToken(ctx, token)
	if err != nil {
		return err
	}
	rec, err := s.store.Recipient(ctx, sv.ConversationID)
	if err != nil {
		return err
	}
	for _, id := range rec.Identities {
		if id.Kind == switchboard.IdentityEmail {
			if err := s.store.RecordOptOut(ctx, id, switchboard.ChannelEmail, "list-unsubscribe"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ratingText matches a bare rating: "4", "4.", "4/5", "4 stars".
var ratingText = regexp.MustCompile(`(?i)^\s*([1-5])\s*(?:/\s*5|stars?|[.!])?\s*$`)

// takeRatings records the items that answer an open survey (a bare
// rating from a customer who was sent one recently) and returns their
// results; the rest are left for threading. A provider's retry of an
// answer is a duplicate.
func (s *Service) takeRatings(ctx context.Context, items []switchboard.Inbound) (map[int]switchboard.IngestResult, error) {
	var out map[int]switchboard.IngestResult
	for i := range items {
		in := &items[i]
		m := ratingText.FindStringSubmatch(in.Text)
		if m == nil || len(in.Attachments) > 0 || len(in.Identities) == 0 {
			continue
		}
		if out == nil {
			out = map[int]switchboard.IngestResult{}
		}
		if in.ProviderID != "" {
			dup, err := s.store.AnsweredBy(ctx, in.Channel, in.ProviderID)
			if err != nil {
				return nil, err
			}
			if dup {
				out[i] = switchboard.IngestResult{Duplicate: true}
				continue
			}
		}
		sv, ok, err := s.store.OpenSurveyFor(ctx, in.Identities[0], s.clock.Now().Add(-surveyAnswerWindow))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		rating := int(m[1][0] - '0')
		recorded, err := s.store.AnswerSurvey(ctx, sv.ID, rating, in.Channel, in.ProviderID)
		if err != nil {
			return nil, err
		}
		if recorded {
			out[i] = switchboard.IngestResult{ConversationID: sv.ConversationID, CustomerID: sv.CustomerID, Rating: rating}
		}
	}
	return out, nil
}

// csat computes satisfaction by the channel the survey went out on.
func (s *Service) csat(ctx context.Context, q AnalyticsQuery, out []Analytics) error {
	type agg struct {
		surveys, responses, sum int
		dist                    [6]int
	}
	by := map[switchboard.Channel]*agg{}
	err := s.store.EachSurveySent(ctx, q.From, q.To, func(ch switchboard.Channel, state string, rating int) {
		a := by[ch]
		if a == nil {
			a = &agg{}
			by[ch] = a
		}
		a.surveys++
		if state == store.SurveyAnswered && rating >= 1 && rating <= 5 {
			a.responses++
			a.sum += rating
			a.dist[rating]++
		}
	})
	if err != nil {
		return err
	}
	for _, ch := range switchboard.Channels {
		a := by[ch]
		if a == nil {
			continue
		}
		row := map[string]any{"channel": ch, "surveys": a.surveys, "responses": a.responses, "response_rate": float64(a.responses) / float64(a.surveys),
			"distribution": map[string]int{"1": a.dist[1], "2": a.dist[2], "3": a.dist[3], "4": a.dist[4], "5": a.dist[5]}}
		if a.responses > 0 {
			row["average"] = float64(a.sum) / float64(a.responses)
		} else {
			row["average"] = nil
		}
		for i := range out {
			out[i].Rows = append(out[i].Rows, row)
		}
	}
	for i := range out {
		out[i].Columns = []string{"channel", "surveys", "responses", "response_rate", "average", "distribution"}
	}
	return nil
}
