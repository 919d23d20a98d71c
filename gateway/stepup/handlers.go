package stepup

import (
	"errors"
	"net/http"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// labels are the buttons of the code channels.
var labels = map[string]string{
	notify.SMS:   "Text me a code",
	notify.Voice: "Call me with a code",
	notify.Email: "Email me a code",
}

// choices are the code channels the pending login offers, as buttons.
func choices(methods []string) []web.Choice {
	var out []web.Choice
	for _, m := range methods {
		if l, ok := labels[m]; ok {
			out = append(out, web.Choice{Value: m, Label: l})
		}
	}
	return out
}

// page shows how the person can verify it's them.
func (s *Room) page(w http.ResponseWriter, r *http.Request) error {
	p, _, err := s.pending(r)
	if err != nil {
		var e *web.Error
		if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			http.Redirect(w, r, web.Prefix+"login", http.StatusFound)
			return nil
		}
		return err
	}
	return s.showChoice(w, r, http.StatusOK, p, "")
}

// why says what the step-up is for.
func why(p session.Pending) string {
	switch p.Purpose {
	case session.PurposeSettings:
		return "To change your login security, we need to verify it's you."
	case session.PurposePhoneChange:
		return "To confirm your new security phone, we'll send a code to it."
	}
	return "We don't recognise this device, so we need to verify it's you before you continue."
}

func (s *Room) showChoice(w http.ResponseWriter, r *http.Request, status int, p session.Pending, msg string) error {
	token, err := s.Site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	s.Site.Render(w, r, status, "stepup", web.PageData{Title: "Verify it's you", CSRF: token, Error: msg,
		Message: why(p) + " Choose how to get a security code.",
		Methods: choices(p.Methods), Support: s.Site.SupportLine()})
	return nil
}

func (s *Room) showCode(w http.ResponseWriter, r *http.Request, status int, methods []string, info, msg string) error {
	token, err := s.Site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	s.Site.Render(w, r, status, "code", web.PageData{Title: "Enter your security code", CSRF: token, Error: msg,
		Message: info, Methods: choices(methods), Support: s.Site.SupportLine()})
	return nil
}

// sentLine tells the person where the code went.
func sentLine(out sent) string {
	switch out.Channel {
	case notify.Voice:
		return "We're calling " + out.To + " with your code. Enter it below."
	case notify.Email:
		return "We emailed a code to " + out.To + ". Enter it below."
	}
	return "We texted a code to " + out.To + ". Enter it below."
}

func (s *Room) sendForm(w http.ResponseWriter, r *http.Request) error {
	if err := web.ReadForm(w, r); err != nil {
		return err
	}
	out, err := s.send(r, r.PostFormValue("method"))
	if err != nil {
		return s.formRefusal(w, r, err, false)
	}
	p, _ := s.Sessions.CurrentPending(r)
	return s.showCode(w, r, http.StatusOK, p.Methods, sentLine(out), "")
}

func (s *Room) verifyForm(w http.ResponseWriter, r *http.Request) error {
	if err := web.ReadForm(w, r); err != nil {
		return err
	}
	out, err := s.verify(w, r, r.PostFormValue("method"), r.PostFormValue("code"), r.PostFormValue("remember_device") == "true")
	if err != nil {
		return s.formRefusal(w, r, err, true)
	}
	http.Redirect(w, r, out.Continue, http.StatusSeeOther)
	return nil
}

// formRefusal shows a refusal on the page it came from, or sends the person
// back to sign in when the pending login is gone.
func (s *Room) formRefusal(w http.ResponseWriter, r *http.Request, err error, codePage bool) error {
	var e *web.Error
	if !errors.As(err, &e) || e.Status >= 500 && e.Reason != policies.ReasonCodeNotSent {
		return err
	}
	p, perr := s.Sessions.CurrentPending(r)
	if perr != nil || e.Status == http.StatusUnauthorized {
		http.Redirect(w, r, web.Prefix+"login", http.StatusSeeOther)
		return nil
	}
	s.Log.DebugContext(r.Context(), "step-up form refused", "reason", e.Reason)
	if codePage {
		return s.showCode(w, r, e.Status, p.Methods, "", e.Message)
	}
	return s.showChoice(w, r, e.Status, p, e.Message)
}

type sendRequest struct {
	Method string `json:"method"`
}

type verifyRequest struct {
	Method         string `json:"method"`
	Code           string `json:"code"`
	Answer         string `json:"answer"`
	RememberDevice bool   `json:"remember_device"`
}

func (s *Room) apiSend(w http.ResponseWriter, r *http.Request) error {
	var req sendRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	out, err := s.send(r, req.Method)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, struct {
		web.APIResponse
		sent
	}{web.APIResponse{Status: "code_sent", Message: sentLine(out)}, out})
	return nil
}

func (s *Room) apiVerify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	typed := req.Code
	if req.Method == "question" {
		typed = req.Answer
	}
	out, err := s.verify(w, r, req.Method, typed, req.RememberDevice)
	if err != nil {
		return err
	}
	status := "authenticated"
	if out.PhoneChanged {
		status = "phone_changed"
	}
	web.WriteJSON(w, http.StatusOK, struct {
		web.APIResponse
		DeviceRegistered bool `json:"device_registered"`
	}{web.APIResponse{Status: status, Redirect: out.Continue}, out.Registered})
	return nil
}
