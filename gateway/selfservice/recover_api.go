package selfservice

import (
	"net/http"

	"github.com/portcullis/portcullis/gateway/web"
)

// The JSON API of a recovery answers each step with a status naming the
// next one: choose_method (with the methods in step_up), code_sent,
// username_sent (the username went by email), username_recovered (with
// the username in user), choose_password, password_reset. A refusal of one
// field names it ("field").

// recoveryAPI are the JSON handlers of a recovery of one kind.
type recoveryAPI struct {
	s    *Room
	kind string
}

// apiStep runs a step of the JSON API: the request is decoded into a T
// and do answers it; a field's refusal is written with the field named.
func apiStep[T any](s *Room, w http.ResponseWriter, r *http.Request, do func(req T) error) error {
	var req T
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	return s.api(w, r, do(req))
}

func (a recoveryAPI) identify(w http.ResponseWriter, r *http.Request) error {
	return apiStep(a.s, w, r, func(f RecoveryForm) error {
		methods, err := a.s.identifyRecovery(w, r, a.kind, f)
		if err == nil {
			web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "choose_method", Message: methodMessage(a.kind), StepUp: methods})
		}
		return err
	})
}

// recoveryCodeSent is the answer to a recovery code sent.
type recoveryCodeSent struct {
	web.APIResponse
	Channel string `json:"channel"`
}

func (a recoveryAPI) send(w http.ResponseWriter, r *http.Request) error {
	return apiStep(a.s, w, r, func(req sendRequest) error {
		done, err := a.s.sendRecovery(w, r, a.kind, req.Method)
		if err != nil {
			return err
		}
		var out any = recoveryCodeSent{web.APIResponse{Status: "code_sent", Message: codeSentMessage(req.Method)}, req.Method}
		if done {
			out = web.APIResponse{Status: "username_sent", Message: msgUsernameEmailed, Redirect: web.Prefix + "login"}
		}
		web.WriteJSON(w, http.StatusOK, out)
		return nil
	})
}

func (a recoveryAPI) verify(w http.ResponseWriter, r *http.Request) error {
	return apiStep(a.s, w, r, func(req verifyRequest) error {
		u, err := a.s.verifyRecovery(w, r, a.kind, req.Code)
		if err == nil && a.kind == recoverPassword {
			web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "choose_password", Message: "Choose the new password of your profile."})
		} else if err == nil {
			web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "username_recovered", Message: "The username of your profile is " + u.Username + ".",
				User: u.Username, Redirect: web.Prefix + "login"})
		}
		return err
	})
}

func (a recoveryAPI) complete(w http.ResponseWriter, r *http.Request) error {
	return apiStep(a.s, w, r, func(f PasswordForm) error {
		err := a.s.completePassword(w, r, f)
		if err == nil {
			web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "password_reset", Message: MsgPasswordReset, Redirect: afterPasswordReset})
		}
		return err
	})
}
