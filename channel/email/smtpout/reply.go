package smtpout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"
)

// Stages of one SMTP session, as Client.Stage reports them. A refused
// recipient's stage is StageRcpt followed by " <address>".
const (
	StageDial     = "dial" // TCP connect, and the TLS handshake with smtps
	StageStartTLS = "starttls"
	StageEHLO     = "ehlo"
	StageAuth     = "auth"
	StageSize     = "size"
	StageMailFrom = "mail from"
	StageRcpt     = "rcpt to"
	StageData     = "data"
)

// Stage returns the stage of the SMTP session at which err, an error from
// c.Send, happened (one of the Stage constants, "rcpt to <address>" for a
// recipient), or "" when err did not come from the session: the mail could
// not be built, say.
func (c *Client) Stage(err error) string {
	if err == nil {
		return ""
	}
	// classify formats every session error as "smtp HOST: STAGE: cause".
	// No stage contains ": " (an address has no spaces).
	rest, ok := strings.CutPrefix(err.Error(), "smtp "+c.host+": ")
	if !ok {
		return ""
	}
	stage, _, ok := strings.Cut(rest, ": ")
	if !ok {
		return ""
	}
	switch stage {
	case StageDial, StageStartTLS, StageEHLO, StageAuth, StageSize, StageMailFrom, StageData:
		return stage
	}
	if strings.HasPrefix(stage, StageRcpt+" <") && strings.HasSuffix(stage, ">") {
		return stage
	}
	return ""
}

// Reply returns the SMTP reply carried by err as the server sent it, code,
// enhanced status code and text, e.g. "535 5.7.8 Authentication
// credentials invalid"; the lines of a multi-line reply are joined with
// "\n" as on the wire ("550-5.1.1 ...\n550 5.1.1 ..."). It returns "" when
// err carries no reply (a network error, say). go-smtp's own error text
// leaves the enhanced code out.
func Reply(err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return ""
	}
	enh := ""
	if se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode != smtp.NoEnhancedCode {
		enh = fmt.Sprintf("%d.%d.%d ", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	lines := strings.Split(se.Message, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		lines[i] = strings.TrimRight(fmt.Sprintf("%03d%s%s%s", se.Code, sep, enh, l), " ")
	}
	return strings.Join(lines, "\n")
}
