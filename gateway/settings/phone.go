package settings

import (
	"errors"
	"net/http"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

type phoneRequest struct {
	Phone string `json:"phone"`
}

// apiSetPhone starts setting or changing the security phone, and answers
// where the confirming code will go.
func (s *Room) apiSetPhone(w http.ResponseWriter, r *http.Request) error {
	var req phoneRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	masked, methods, err := s.changePhone(w, r, id, req.Phone, "", "")
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusAccepted, struct {
		web.APIResponse
		To string `json:"to"`
	}{web.APIResponse{Status: "confirm_phone", StepUp: methods,
		Message: "We'll send a code to the new number. Ask for it by text or call, then enter it to confirm."}, masked})
	return nil
}

// changePhone starts setting or changing the security phone. The settings
// point judges the new number (a VoIP, toll-free, premium-rate, shared or
// unknown number is refused, each with its reason) and wants a fresh
// step-up (which returns to rd, see allowed); then a confirmation is begun:
// the person asks for a code sent to the new number (step-up/send) and types
// it (step-up/verify), and only then does the number take effect, with a
// notice to the old one, and the person goes to confirmed. It returns the
// new number masked and the methods the code may be sent by.
func (s *Room) changePhone(w http.ResponseWriter, r *http.Request, id session.Identity, raw, rd, confirmed string) (string, []string, error) {
	phone, e164 := s.Facts.Phone(r.Context(), raw)
	if err := s.allowedChange(w, r, id, &policies.Change{Kind: "security_phone", Phone: &phone}, rd); err != nil {
		return "", nil, err
	}
	if e164 == "" {
		return "", nil, web.BadRequest(errors.New("security phone: the policy accepted a number that could not be read"))
	}
	methods := []string{"sms", "voice"}
	if _, err := s.Sessions.BeginPhoneChange(w, r, id, methods, e164, confirmed); err != nil {
		return "", nil, web.Unavailable(err)
	}
	return phone.Masked, methods, nil
}
