package selfservice

import (
	"embed"
	"errors"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

//go:embed pages/*.html
var pageFS embed.FS

const (
	enrolPage = web.Prefix + "enroll"
	// afterEnrolment is where a created profile sends the browser: the
	// sign-in page, saying the profile is ready.
	afterEnrolment = web.Prefix + "login?done=enrolled"
)

// The JSON API answers each step with a status naming the next one:
// enrol_credentials, enrol_phone, code_sent, enrolled. A refusal of one
// field names it ("field").

// apiRefusal is a refusal as the JSON API writes it.
type apiRefusal struct {
	web.APIResponse
	Field string `json:"field,omitempty"`
}

// api runs a step for the JSON API: a field's refusal is written with the
// field named; any other failure goes to the site's renderer.
func (s *Room) api(w http.ResponseWriter, r *http.Request, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		e := fe.Refusal
		s.Log.InfoContext(r.Context(), "request refused", "reason", e.Reason, "status", e.Status, "field", fe.Field, "path", r.URL.Path)
		web.WriteJSON(w, e.Status, apiRefusal{web.APIResponse{Status: "denied", Reason: e.Reason, Message: e.Message}, fe.Field})
		return nil
	}
	return err
}

func (s *Room) apiIdentify(w http.ResponseWriter, r *http.Request) error {
	var f IdentityForm
	if err := web.DecodeJSON(w, r, &f); err != nil {
		return err
	}
	if err := s.identify(w, r, f); err != nil {
		return s.api(w, r, err)
	}
	web.WriteJSON(w, http.StatusOK, struct {
		web.APIResponse
		ConsentText    string `json:"consent_text"`
		ConsentVersion string `json:"consent_version"`
	}{web.APIResponse{Status: "enrol_credentials",
		Message: "Thanks, we've found your records. Choose a username and a password."}, ConsentText, ConsentVersion})
	return nil
}

func (s *Room) apiCredentials(w http.ResponseWriter, r *http.Request) error {
	var f CredentialsForm
	if err := web.DecodeJSON(w, r, &f); err != nil {
		return err
	}
	if err := s.credentials(r, f); err != nil {
		return s.api(w, r, err)
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "enrol_phone",
		Message: "Now give the phone that should receive security codes.", StepUp: phoneMethods})
	return nil
}

// codeSent is the answer to a sent code.
type codeSent struct {
	web.APIResponse
	sent
}

func (s *Room) apiPhone(w http.ResponseWriter, r *http.Request) error {
	var f PhoneForm
	if err := web.DecodeJSON(w, r, &f); err != nil {
		return err
	}
	out, err := s.phone(r, f)
	if err != nil {
		return s.api(w, r, err)
	}
	web.WriteJSON(w, http.StatusOK, codeSent{web.APIResponse{Status: "code_sent", Message: codeMessage(out)}, out})
	return nil
}

type sendRequest struct {
	Method string `json:"method"`
}

func (s *Room) apiSend(w http.ResponseWriter, r *http.Request) error {
	var req sendRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	out, err := s.resend(r, req.Method)
	if err != nil {
		return s.api(w, r, err)
	}
	web.WriteJSON(w, http.StatusOK, codeSent{web.APIResponse{Status: "code_sent", Message: codeMessage(out)}, out})
	return nil
}

type verifyRequest struct {
	Code string `json:"code"`
}

func (s *Room) apiVerify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.verify(w, r, req.Code)
	if err != nil {
		return s.api(w, r, err)
	}
	web.WriteJSON(w, http.StatusCreated, web.APIResponse{Status: "enrolled", Message: MsgEnrolled,
		Redirect: afterEnrolment, User: u.Username})
	return nil
}

// codeMessage says where a code went.
func codeMessage(out sent) string {
	if out.Channel == "voice" {
		return "We're calling " + out.To + " with your code. Enter it to finish creating your profile."
	}
	return "We texted a code to " + out.To + ". Enter it to finish creating your profile."
}

// pageData is what the room's pages show.
type pageData struct {
	Title   string
	CSRF    string
	Error   string
	Message string
	// Errors are the fields' messages by field name; Values what the
	// person typed that is safe to show again.
	Errors map[string]string
	Values map[string]string
	// ConsentText and ConsentVersion are the consent the credentials page
	// asks for.
	ConsentText    string
	ConsentVersion string
	// To is the masked number a code went to.
	To      string
	Support string
	// Kind is a recovery's kind (username, password); Questions whether
	// its identify page asks the identity questions.
	Kind      string
	Questions bool
	// Methods are the buttons of a recovery's method choice.
	Methods []web.Choice
	// Username is a recovered username.
	Username string
	// Hint is the new password's hint.
	Hint string
}

// show renders one of the room's pages with a fresh CSRF token.
func (s *Room) show(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) error {
	token, err := s.Site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	d.CSRF = token
	s.Site.RenderPage(w, r, status, s.pages, name, d)
	return nil
}

// refused shows the page of a form again with the refusal: beside its
// field, or above the form. A step without a live enrolment goes back to
// the start; failures of the gateway are the error page's.
func (s *Room) refused(w http.ResponseWriter, r *http.Request, name string, d pageData, err error) error {
	var e *web.Error
	if !errors.As(err, &e) || e.Status >= 500 {
		return err
	}
	switch {
	case e.Status != http.StatusUnauthorized:
	case strings.HasPrefix(name, "recover_") && name != "recover_identify":
		name, d = "recover_identify", s.recoveryData(d.Kind)
	case !strings.HasPrefix(name, "recover_") && name != "enrol_identify":
		name, d = "enrol_identify", pageData{Title: "Create a profile"}
	}
	s.Log.InfoContext(r.Context(), "form refused", "page", name, "reason", e.Reason, "status", e.Status)
	var fe *FieldError
	if errors.As(err, &fe) {
		d.Errors = map[string]string{fe.Field: fe.Refusal.Message}
	} else {
		d.Error = e.Message
	}
	return s.show(w, r, e.Status, name, d)
}

// step reads a form of the room: the CSRF check first.
func step(w http.ResponseWriter, r *http.Request) error { return web.ReadForm(w, r) }

func (s *Room) identifyPage(w http.ResponseWriter, r *http.Request) error {
	return s.show(w, r, http.StatusOK, "enrol_identify", pageData{Title: "Create a profile"})
}

func (s *Room) identifyForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	f := IdentityForm{LastName: r.PostFormValue("last_name"), TaxIDLast4: r.PostFormValue("tax_id_last4"),
		DateOfBirth: r.PostFormValue("date_of_birth"), AccountNumber: r.PostFormValue("account_number")}
	if err := s.identify(w, r, f); err != nil {
		d := pageData{Title: "Create a profile"}
		var fe *FieldError
		if errors.As(err, &fe) && fe.Refusal.Reason == policies.ReasonBadRequest {
			// A form the person typed wrong keeps the name; the secrets
			// are never shown again.
			d.Values = map[string]string{"last_name": f.LastName}
		}
		return s.refused(w, r, "enrol_identify", d, err)
	}
	http.Redirect(w, r, enrolPage+"/credentials", http.StatusSeeOther)
	return nil
}

func (s *Room) credentialsData() pageData {
	return pageData{Title: "Choose your sign-in details", ConsentText: ConsentText, ConsentVersion: ConsentVersion}
}

// stagePage shows a step's page when the browser's enrolment is at it,
// and otherwise sends it to the start.
func (s *Room) stagePage(w http.ResponseWriter, r *http.Request, name string, d pageData, stages ...string) error {
	c, err := s.load(r, stages...)
	var e *web.Error
	if errors.As(err, &e) && e.Status < 500 {
		http.Redirect(w, r, enrolPage, http.StatusFound)
		return nil
	} else if err != nil {
		return err
	}
	d.To = c.e.PhoneMasked
	return s.show(w, r, http.StatusOK, name, d)
}

func (s *Room) credentialsPage(w http.ResponseWriter, r *http.Request) error {
	return s.stagePage(w, r, "enrol_credentials", s.credentialsData(), stageCredentials)
}

func (s *Room) credentialsForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	f := CredentialsForm{Username: r.PostFormValue("username"), Password: r.PostFormValue("password"),
		Consent: r.PostFormValue("consent") == "yes", ConsentVersion: r.PostFormValue("consent_version")}
	if err := s.credentials(r, f); err != nil {
		d := s.credentialsData()
		d.Values = map[string]string{"username": f.Username}
		return s.refused(w, r, "enrol_credentials", d, err)
	}
	http.Redirect(w, r, enrolPage+"/phone", http.StatusSeeOther)
	return nil
}

func (s *Room) phonePage(w http.ResponseWriter, r *http.Request) error {
	return s.stagePage(w, r, "enrol_phone", pageData{Title: "Your security phone"}, stagePhone, stageCode)
}

func (s *Room) phoneForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	f := PhoneForm{Phone: r.PostFormValue("phone"), Method: r.PostFormValue("method")}
	if _, err := s.phone(r, f); err != nil {
		return s.refused(w, r, "enrol_phone", pageData{Title: "Your security phone"}, err)
	}
	http.Redirect(w, r, enrolPage+"/code", http.StatusSeeOther)
	return nil
}

func (s *Room) codeData() pageData {
	return pageData{Title: "Enter your code", Support: s.Site.SupportLine()}
}

func (s *Room) codePage(w http.ResponseWriter, r *http.Request) error {
	return s.stagePage(w, r, "enrol_code", s.codeData(), stageCode)
}

func (s *Room) sendForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	out, err := s.resend(r, r.PostFormValue("method"))
	d := s.codeData()
	if err != nil {
		if c, lerr := s.load(r, stageCode); lerr == nil {
			d.To = c.e.PhoneMasked
		}
		return s.refused(w, r, "enrol_code", d, err)
	}
	d.To, d.Message = out.To, codeMessage(out)
	return s.show(w, r, http.StatusOK, "enrol_code", d)
}

func (s *Room) verifyForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	if _, err := s.verify(w, r, r.PostFormValue("code")); err != nil {
		d := s.codeData()
		if c, lerr := s.load(r, stageCode); lerr == nil {
			d.To = c.e.PhoneMasked
		} else if errors.As(err, new(*FieldError)) {
			// The username was taken meanwhile: the enrolment is back
			// at the credentials step.
			if _, lerr := s.load(r, stageCredentials); lerr == nil {
				cd := s.credentialsData()
				return s.refused(w, r, "enrol_credentials", cd, err)
			}
		}
		return s.refused(w, r, "enrol_code", d, err)
	}
	http.Redirect(w, r, afterEnrolment, http.StatusSeeOther)
	return nil
}
