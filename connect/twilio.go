package connect

import (
	"context"
	"fmt"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/channel/twilio"
)

// TwilioNumber is one of the account's numbers and where it points.
type TwilioNumber struct {
	twilio.PhoneNumber
	// Mismatches say how the number's webhooks differ from this
	// deployment's; empty when they point here.
	Mismatches []string
}

// TwilioAccount is what the Twilio account holds, as the admin page
// shows it.
type TwilioAccount struct {
	Numbers  []TwilioNumber
	Services []twilio.MessagingService
	Want     twilio.WebhookURLs // this deployment's webhook URLs
}

// TwilioWebhooks are this deployment's Twilio webhook URLs
// (docs/design.md §4.2).
func (s *Service) TwilioWebhooks() twilio.WebhookURLs {
	return twilio.WebhookURLs{
		SmsURL:         s.PublicURL + "/webhooks/twilio/sms",
		StatusCallback: s.PublicURL + "/webhooks/twilio/status",
		VoiceURL:       s.PublicURL + "/webhooks/twilio/voice",
	}
}

func (s *Service) twilioClient() (*twilio.Client, error) {
	c := s.Current()
	if c.TwilioAccountSID == "" || c.TwilioAuthToken == "" {
		return nil, switchboard.Errorf(switchboard.EINVALID, "enter the Twilio account SID and auth token first")
	}
	return &twilio.Client{BaseURL: c.TwilioAPIURL, AccountSID: c.TwilioAccountSID, AuthToken: c.TwilioAuthToken, HTTP: s.HTTP}, nil
}

// TwilioAccount lists the account's numbers, where each points, and its
// Messaging Services (admins).
func (s *Service) TwilioAccount(ctx context.Context, actor switchboard.Actor) (TwilioAccount, error) {
	if err := require(actor, "see the Twilio account"); err != nil {
		return TwilioAccount{}, err
	}
	client, err := s.twilioClient()
	if err != nil {
		return TwilioAccount{}, err
	}
	out := TwilioAccount{Want: s.TwilioWebhooks()}
	numbers, err := client.PhoneNumbers(ctx)
	if err != nil {
		return out, fmt.Errorf("connect: list Twilio numbers: %w", err)
	}
	for _, n := range numbers {
		out.Numbers = append(out.Numbers, TwilioNumber{PhoneNumber: n, Mismatches: n.Mismatches(out.Want)})
	}
	if out.Services, err = client.MessagingServices(ctx); err != nil {
		return out, fmt.Errorf("connect: list Twilio Messaging Services: %w", err)
	}
	return out, nil
}

// PointTwilioNumber points the number's SMS, status and voice webhooks
// at this deployment through Twilio's API, and records it (admins).
func (s *Service) PointTwilioNumber(ctx context.Context, actor switchboard.Actor, numberSID string) (twilio.PhoneNumber, error) {
	if err := require(actor, "change Twilio numbers"); err != nil {
		return twilio.PhoneNumber{}, err
	}
	client, err := s.twilioClient()
	if err != nil {
		return twilio.PhoneNumber{}, err
	}
	want := s.TwilioWebhooks()
	n, err := client.PointNumber(ctx, numberSID, want)
	if err != nil {
		return n, fmt.Errorf("connect: point Twilio number: %w", err)
	}
	s.audit(ctx, actor, "twilio.point_number", n.PhoneNumber, fmt.Sprintf("%s: SMS %s, status %s, voice %s", n.SID, want.SmsURL, want.StatusCallback, want.VoiceURL))
	return n, nil
}
