package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// status is the JSON of a Kubernetes metav1.Status, the message protocols
// v4 and later send on the error stream when a command ends: Success, or
// Failure with a reason. client-go's remotecommand reads a Failure with
// reason NonZeroExitCode and an ExitCode cause as the command's exit
// status (kubectl exec exits with it); any other Failure as an error
// carrying the message. Only the fields those clients read are written.
type status struct {
	Metadata struct{}       `json:"metadata"`
	Status   string         `json:"status"`
	Message  string         `json:"message,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Details  *statusDetails `json:"details,omitempty"`
	Code     int            `json:"code,omitempty"`
}

type statusDetails struct {
	Causes []statusCause `json:"causes,omitempty"`
}

type statusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ExitError is the error of a command that ran and exited with a status
// other than 0: Runtime.Exec returns it, and the client gets the status.
type ExitError struct {
	Cmd  []string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("error executing command %v, exit code %d", e.Cmd, e.Code)
}

// statusOf is the status a session ends with: success, the command's
// exit status, or an internal error saying what failed (prefix names the
// operation, as kubelet's "error executing command in container").
func statusOf(err error, prefix string) status {
	var s status
	var exit *ExitError
	switch {
	case err == nil:
		s.Status = "Success"
	case errors.As(err, &exit):
		s.Status = "Failure"
		s.Reason = "NonZeroExitCode"
		s.Message = "command terminated with non-zero exit code: " + exit.Error()
		s.Details = &statusDetails{Causes: []statusCause{{Type: "ExitCode", Message: strconv.Itoa(exit.Code)}}}
	default:
		err = fmt.Errorf("%s: %w", prefix, err)
		s.Status = "Failure"
		s.Code = 500
		s.Reason = "InternalError"
		s.Message = "Internal error occurred: " + err.Error()
		s.Details = &statusDetails{Causes: []statusCause{{Message: err.Error()}}}
	}
	return s
}

// writeStatus writes s on the error stream in the form of the protocol:
// the JSON document (v4 and later), or for the older ones the message of
// a failure only (they take any message as an error, and no message as
// success).
func writeStatus(w io.Writer, s status, jsonStatus bool) error {
	if jsonStatus {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	if s.Status == "Success" {
		return nil
	}
	_, err := io.WriteString(w, s.Message)
	return err
}
