package settings

import (
	"errors"
	"net/http"

	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

type phoneRequest struct {
	Phone string `json:"phone"`
}

// apiSetPhone starts setting or changing the security phone. The settings
// point judges the new number (a VoIP, toll-free, premium-rate, shared or
// unknown number is refused, each with its reason) and wants a fresh
// step-up; then a confirmation is begun: the person asks for a code sent to
// the new number (step-up/send) and types it (step-up/verify), and only
// then does the number take effect, with a notice to the old one.
func (s *Room) apiSetPhone(w http.ResponseWriter, r *http.Request) error {
	var req phoneRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.signedIn(r)
	if err != nil {
		return err
	}
	phone, e164 := s.Facts.Phone(r.Context(), req.Phone)
	if err := s.allowedChange(w, r, id, &policies.Change{Kind: "security_phone", Phone: &phone}); err != nil {
		return err
	}
	if e164 == "" {
		return web.BadRequest(errors.New("security phone: the policy accepted a number that could not be read"))
	}
	methods := []string{"sms", "voice"}
	if _, err := s.Sessions.BeginPhoneChange(w, r, id, methods, e164); err != nil {
		return web.Unavailable(err)
	}
	web.WriteJSON(w, http.StatusAccepted, struct {
		web.APIResponse
		To string `json:"to"`
	}{web.APIResponse{Status: "confirm_phone", StepUp: methods,
		Message: "We'll send a code to the new number. Ask for it by text or call, then enter it to confirm."}, phone.Masked})
	return nil
}
