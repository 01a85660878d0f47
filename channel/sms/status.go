package sms

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboard-inbox/switchboard"
)

// Status is a parsed Twilio message status callback.
type Status struct {
	MessageSID string
	// ProviderStatus is Twilio's MessageStatus, lower-cased: queued,
	// sending, sent, delivered, undelivered, failed, read, accepted,
	// scheduled, canceled, receiving or received.
	ProviderStatus string
	// Delivery is the switchboard.Delivery* status it maps to.
	Delivery     switchboard.DeliveryStatus
	ErrorCode    int // 0 when Twilio sent none
	ErrorMessage string
	To, From     string
}

// ParseStatus reads a status callback form (channels.md §1). MessageSid
// (or the legacy SmsSid) and MessageStatus (or the legacy SmsStatus) are
// required; ErrorCode, when present, must be an integer. Unknown fields are
// ignored. Errors are EINVALID *switchboard.Error values, including for a
// status this package does not know: Twilio adds statuses rarely, and the
// caller may log and acknowledge such callbacks rather than have Twilio
// retry them.
//
// Statuses map onto delivery statuses as: accepted, scheduled, queued and
// sending → queued; sent → sent; delivered → delivered; read → read;
// undelivered, failed and canceled → failed; receiving and received (an
// inbound message) → received. Apply a callback only when
// Advances(current, s.Delivery): callbacks arrive out of order.
func ParseStatus(form url.Values) (Status, error) {
	s := Status{
		MessageSID:   firstOf(form, "MessageSid", "SmsSid"),
		ErrorMessage: strings.TrimSpace(strings.ToValidUTF8(form.Get("ErrorMessage"), "\uFFFD")),
		To:           strings.TrimSpace(form.Get("To")),
		From:         strings.TrimSpace(form.Get("From")),
	}
	if err := checkSID(s.MessageSID); err != nil {
		return Status{}, err
	}
	s.ProviderStatus = strings.ToLower(strings.TrimSpace(firstOf(form, "MessageStatus", "SmsStatus")))
	if s.ProviderStatus == "" {
		return Status{}, invalid("MessageStatus is required")
	}
	s.Delivery = deliveryStatus(s.ProviderStatus)
	if s.Delivery == "" {
		return Status{}, invalid("MessageStatus %q is not a known status", truncate(s.ProviderStatus, 32))
	}
	var err error
	if s.ErrorCode, err = optionalInt(form, "ErrorCode", 0, 1<<30); err != nil {
		return Status{}, err
	}
	if s.ErrorMessage == "" {
		s.ErrorMessage = ErrorText(s.ErrorCode)
	}
	return s, nil
}

func deliveryStatus(providerStatus string) switchboard.DeliveryStatus {
	switch providerStatus {
	case "accepted", "scheduled", "queued", "sending":
		return switchboard.DeliveryQueued
	case "sent":
		return switchboard.DeliverySent
	case "delivered":
		return switchboard.DeliveryDelivered
	case "read":
		return switchboard.DeliveryRead
	case "undelivered", "failed", "canceled":
		return switchboard.DeliveryFailed
	case "receiving", "received":
		return switchboard.DeliveryReceived
	}
	return ""
}

// StatusRank orders outbound delivery statuses: queued 1, sent 2,
// delivered and failed 3, read 4; anything else (received, unknown, "") 0.
//
// delivered and failed share a rank because both are final: whichever
// arrives first stands, so a late "delivered" does not hide a failure, nor
// a late "failed" a delivery. read outranks both: a read receipt is proof
// the message arrived. The rank is a plain integer so that a store can
// apply callbacks with one conditional UPDATE.
func StatusRank(s switchboard.DeliveryStatus) int { return switchboard.DeliveryRank(s) }

// Advances reports whether a message whose delivery status is current
// should take next: only when next ranks strictly higher. Repeated and
// out-of-order callbacks (sent after delivered, delivered after failed) are
// therefore no-ops, and an unknown next status never applies.
func Advances(current, next switchboard.DeliveryStatus) bool {
	return StatusRank(next) > StatusRank(current)
}

// ErrorText describes the Twilio delivery error codes seen most (30001 to
// 30010 and the opt-out 21610), for messages whose callback carried a code
// but no ErrorMessage. It returns "" for 0 and a generic text otherwise.
func ErrorText(code int) string {
	switch code {
	case 0:
		return ""
	case 21610:
		return "the recipient has opted out (STOP)"
	case 30001:
		return "queue overflow"
	case 30002:
		return "account suspended"
	case 30003:
		return "unreachable destination handset"
	case 30004:
		return "message blocked by the recipient or carrier"
	case 30005:
		return "unknown destination handset"
	case 30006:
		return "landline or unreachable carrier"
	case 30007:
		return "filtered by the carrier"
	case 30008:
		return "unknown delivery error"
	case 30010:
		return "message price exceeds the maximum price"
	}
	return fmt.Sprintf("Twilio error %d", code)
}
