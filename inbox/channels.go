package inbox

import (
	"context"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// What the channels record as providers call them. Each change a screen
// shows is announced after it is committed.

// RecordOptOut notes that the identity opted out of a channel with
// keyword (STOP, or a provider's refusal such as Twilio's 21610).
func (s *Service) RecordOptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel, keyword string) error {
	return s.store.RecordOptOut(ctx, id, ch, keyword)
}

// ClearOptOut removes an opt-out (the customer sent START).
func (s *Service) ClearOptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel) error {
	return s.store.ClearOptOut(ctx, id, ch)
}

// OptOut returns the keyword the identity opted out of ch with, or "".
func (s *Service) OptOut(ctx context.Context, id switchboard.IdentityRef, ch switchboard.Channel) (string, error) {
	return s.store.OptOut(ctx, id, ch)
}

// ApplyDeliveryStatus records a provider's delivery report for the
// outbound message it sent as providerID; reports arrive out of order and
// only ever move a message forward. It returns the message and
// conversation when the report changed the message.
func (s *Service) ApplyDeliveryStatus(ctx context.Context, ch switchboard.Channel, providerID string, status switchboard.DeliveryStatus, errText string) (messageID, conversationID string, err error) {
	messageID, conversationID, err = s.store.ApplyDeliveryStatus(ctx, ch, providerID, status, errText)
	if err == nil && messageID != "" {
		s.announceMessages(ctx, switchboard.BusMessageUpdated, "", messageID)
	}
	return messageID, conversationID, err
}

// ApplyWatermark applies a delivery or read watermark (Messenger,
// Instagram) and returns how many messages moved.
func (s *Service) ApplyWatermark(ctx context.Context, ch switchboard.Channel, id switchboard.IdentityRef, upTo time.Time, status switchboard.DeliveryStatus) (int, error) {
	moved, err := s.store.ApplyWatermark(ctx, ch, id, upTo, status)
	if err != nil {
		return 0, err
	}
	s.announceMessages(ctx, switchboard.BusMessageUpdated, "", moved...)
	return len(moved), nil
}

// RecordCall remembers who is calling, for the voicemail that may follow.
func (s *Service) RecordCall(ctx context.Context, callSID, caller string) error {
	return s.store.RecordCall(ctx, callSID, caller)
}

// Caller returns the number recorded for a call, or "".
func (s *Service) Caller(ctx context.Context, callSID string) (string, error) {
	return s.store.Caller(ctx, callSID)
}

// AttachTranscript sets a voicemail's transcript, whichever of the
// recording and the transcription arrived first.
func (s *Service) AttachTranscript(ctx context.Context, ch switchboard.Channel, providerID, transcript string) error {
	id, err := s.store.AttachTranscript(ctx, ch, providerID, transcript)
	if err == nil && id != "" {
		s.announceMessages(ctx, switchboard.BusMessageUpdated, "", id)
	}
	return err
}

// RecordAutoReply notes mail a robot sent (an out-of-office) on the
// conversation it answers; it never becomes a customer message.
func (s *Service) RecordAutoReply(ctx context.Context, a switchboard.AutoReply) (conversationID string, isNew bool, err error) {
	conversationID, isNew, err = s.store.RecordAutoReply(ctx, a)
	if err == nil && isNew && conversationID != "" {
		s.announceConversations(ctx, "", conversationID)
	}
	return conversationID, isNew, err
}

// RecordBounce marks the outbound e-mail a bounce reports on as failed.
func (s *Service) RecordBounce(ctx context.Context, b switchboard.Bounce) (messageID, conversationID string, err error) {
	messageID, conversationID, err = s.store.RecordBounce(ctx, b)
	if err == nil && messageID != "" {
		s.announceMessages(ctx, switchboard.BusMessageUpdated, "", messageID)
	}
	return messageID, conversationID, err
}

// EmailThread returns the thread headers for an e-mail reply in a
// conversation.
func (s *Service) EmailThread(ctx context.Context, conversationID string) (switchboard.EmailThread, error) {
	return s.store.EmailThread(ctx, conversationID)
}

// TryAutoMail reserves the right to send the automatic mail messageID to
// address: at most one per address within window.
func (s *Service) TryAutoMail(ctx context.Context, address, messageID string, window time.Duration) (bool, error) {
	return s.store.TryAutoMail(ctx, address, messageID, window)
}

// MailboxState returns an IMAP mailbox's UIDVALIDITY and last UID stored.
func (s *Service) MailboxState(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error) {
	return s.store.MailboxState(ctx, mailbox)
}

// SaveMailboxState records an IMAP mailbox's position.
func (s *Service) SaveMailboxState(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	return s.store.SaveMailboxState(ctx, mailbox, uidValidity, lastUID)
}

// LastInbound returns when the customer of a conversation last wrote on
// ch: the messaging windows of WhatsApp and Messenger run from it, and
// their senders check it again when the reply goes out.
func (s *Service) LastInbound(ctx context.Context, conversationID string, ch switchboard.Channel) (time.Time, error) {
	r, err := s.store.Recipient(ctx, conversationID)
	return r.LastInbound[ch], err
}
