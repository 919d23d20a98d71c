// Package notify is how the gateway reaches a person outside the browser: a
// security code by text message, voice call or email, and the notices of
// security-relevant changes. It declares the Sender the delivery plugins
// implement and writes every text they carry, so that no plugin decides what
// a message says. A notice never carries a code, a password or a link that
// asks for one.
package notify

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Channels a message can go by.
const (
	SMS   = "sms"
	Voice = "voice"
	Email = "email"
)

// Purposes a message serves.
const (
	PurposeLogin       = "login"
	PurposeRecover     = "recover"
	PurposePhoneChange = "phone_change"
	PurposeSettings    = "settings"
	PurposeNotice      = "notice"
)

// Message is one message to one person.
type Message struct {
	// Channel is SMS, Voice or Email.
	Channel string `json:"channel"`
	// To is an E.164 number for SMS and Voice, an address for Email.
	To string `json:"to"`
	// UserID is the profile the message is about.
	UserID string `json:"user_id"`
	// Purpose is what the message is for (PurposeLogin, ...).
	Purpose string `json:"purpose"`
	// Subject is an email's subject; empty for SMS and Voice.
	Subject string `json:"subject,omitempty"`
	// Text is what the person reads, or for Voice what is spoken.
	Text string `json:"text"`
}

// Sender delivers messages. An error means the message may not have gone:
// the caller tells the person and keeps what they had (a code is not used
// up by a failed send). Implementations are safe for concurrent use and
// return within the context's deadline.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrNoChannel is a message for a channel no sender is configured for.
var ErrNoChannel = errors.New("no sender for this channel")

// Router sends each message with the sender configured for its channel.
type Router map[string]Sender

// Send sends m with the sender for its channel.
func (r Router) Send(ctx context.Context, m Message) error {
	s, ok := r[m.Channel]
	if !ok || s == nil {
		return ErrNoChannel
	}
	return s.Send(ctx, m)
}

// CodeText is the text message or email body carrying a security code that
// expires after ttl.
func CodeText(org, code string, ttl time.Duration) string {
	return code + " is your " + org + " security code. It expires in " + minutes(ttl) + ". " +
		"We will never call you or text you to ask for it; don't share it with anyone."
}

// minutes says a lifetime in whole minutes, at least one.
func minutes(d time.Duration) string {
	n := int(max(d.Round(time.Minute)/time.Minute, 1))
	if n == 1 {
		return "1 minute"
	}
	return strconv.Itoa(n) + " minutes"
}

// CodeSpeech is the voice call's script: the code read digit by digit,
// twice, with pauses a text-to-speech engine keeps.
func CodeSpeech(org, code string) string {
	digits := strings.Join(strings.Split(code, ""), ", ")
	return "This is " + org + ". Your security code is: " + digits + ". Again, your security code is: " +
		digits + ". Don't share it with anyone. Goodbye."
}

// Notices of security-relevant changes, by event name (the policies'
// notify events). None carries a code, a password or a link.
var notices = map[string]string{
	"account_locked":         "Your %s profile was locked after too many incorrect passwords. To unlock it, use Forgot password on the sign-in page or call us.",
	"device_registered":      "A new device was registered to your %s profile. If this wasn't you, call us.",
	"device_removed":         "A device was removed from your %s profile. If this wasn't you, call us.",
	"security_phone_changed": "The security phone on your %s profile was changed. If this wasn't you, call us.",
	"two_factor_changed":     "Two-step verification on your %s profile was changed. If this wasn't you, call us.",
	"passkey_added":          "A passkey was added to your %s profile. If this wasn't you, call us.",
	"password_changed":       "The password of your %s profile was changed. If this wasn't you, call us.",
	"username_changed":       "The username of your %s profile was changed. If this wasn't you, call us.",
	"username_recovered":     "Someone, perhaps you, used Forgot username to get the username of your %s profile. If this wasn't you, call us.",
	"account_unlocked":       "Your %s profile was unlocked when its password was reset. If this wasn't you, call us.",
	"questions_changed":      "The challenge questions of your %s profile were changed. If this wasn't you, call us.",
}

// Notice is the text of the notice for event, and false for an event
// without one.
func Notice(org, event string) (string, bool) {
	t, ok := notices[event]
	if !ok {
		return "", false
	}
	return strings.Replace(t, "%s", org, 1), true
}

// Notices sends the notices of security-relevant changes: by email when the
// profile has an address, else by text message to the security phone. A
// notice that cannot be sent is logged and does not undo the change.
type Notices struct {
	Sender Sender
	// Org is the organisation's name as the texts say it.
	Org string
	Log *slog.Logger
}

// Send sends the notice of event to the person with this user ID, phone and
// email.
func (n *Notices) Send(ctx context.Context, userID, phone, email, event string) {
	text, ok := Notice(n.Org, event)
	if !ok || n.Sender == nil {
		return
	}
	m := Message{UserID: userID, Purpose: PurposeNotice, Text: text}
	switch {
	case email != "":
		m.Channel, m.To, m.Subject = Email, email, n.Org+": a change to your profile"
	case phone != "":
		m.Channel, m.To = SMS, phone
	default:
		n.Log.InfoContext(ctx, "notice not sent: no address or phone on file", "event", event, "user_id", userID)
		return
	}
	if err := n.Sender.Send(ctx, m); err != nil {
		n.Log.WarnContext(ctx, "notice not sent", "event", event, "user_id", userID, "channel", m.Channel, "error", err)
		return
	}
	n.Log.InfoContext(ctx, "notice sent", "event", event, "user_id", userID, "channel", m.Channel)
}
