package cri

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
)

// Removal intents. RemoveContainer answers before anything of the
// container changes in the database: it appends the container's ID to a
// file under the engine's root (one write(2), where the removal's claim
// is a SQLite commit on the answer's path) and hides the container from
// every CRI call from then on (removing); the engine's RemoveIntended
// claims and removes it after the answer. A server killed in between
// leaves the ID in the file, whatever the kernel had of it: the next
// server's Recover removes every container the file names before it
// serves, so a removal kubelet was told of is not undone by a crash (as
// with the claim, a power cut may lose the last writes). The file is
// emptied whenever no removal it names is under way.
//
// Other hull processes (the CLI) see such a container as it was until the
// claim, a moment after the answer. Only hull cri serve keeps the file
// (Options.RemovalIntents): one server per root, which both writes it
// and recovers it; hull kube's in-process servers claim first.

// intentsFile is the file's name under the engine's root.
const intentsFile = "cri-removals"

// removalIntents is the open file and the removals it names that are
// still under way.
type removalIntents struct {
	mu      sync.Mutex
	f       *os.File
	pending int
}

// openIntents opens (makes) the intents file under root.
func openIntents(root string) (*removalIntents, error) {
	f, err := os.OpenFile(filepath.Join(root, intentsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cri: removal intents: %w", err)
	}
	return &removalIntents{f: f}, nil
}

// add records that container id will be removed.
func (r *removalIntents) add(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.WriteString(id + "\n"); err != nil {
		return fmt.Errorf("cri: record the removal of %s: %w", id, err)
	}
	r.pending++
	return nil
}

// done records that one removal add recorded has ended; the last one
// empties the file.
func (r *removalIntents) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending--; r.pending == 0 {
		r.f.Truncate(0)
	}
}

// close closes the file (the server has stopped: every removal ended).
func (r *removalIntents) close() {
	if r != nil {
		r.f.Close()
	}
}

// readIntents is the container IDs the intents file under root names.
func readIntents(root string) ([]string, error) {
	f, err := os.Open(filepath.Join(root, intentsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, sc.Err()
}

// recoverIntents removes the containers a killed server answered
// RemoveContainer for, then empties the file.
func (s *Server) recoverIntents(ctx context.Context) error {
	if !s.opts.RemovalIntents || s.opts.Root == "" {
		return nil
	}
	ids, err := readIntents(s.opts.Root)
	if err != nil {
		return fmt.Errorf("cri: removal intents: %w", err)
	}
	var errs []error
	for _, id := range ids {
		c, err := s.eng.Get(ctx, id)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err == nil && c.Config.Labels[labelName] == "" {
			continue // not the CRI's (an ID the file cannot have named)
		}
		s.opts.Log.Info("removing a container a killed server answered RemoveContainer for", "id", id)
		if err := s.eng.Remove(ctx, id, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Truncate(filepath.Join(s.opts.Root, intentsFile), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cri: removal intents: %w", err)
	}
	return nil
}
