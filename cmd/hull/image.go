package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"hull/internal/engine"
	"hull/internal/reference"
	"hull/internal/ui"
)

// signalContext is cancelled by SIGINT/SIGTERM so downloads stop cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// addImageCommands adds pull, push, images, image * (image checkpoint
// only there), tag, rmi, save, load, history (docker's alias of image history), login and logout.
func addImageCommands(root *cobra.Command, g *globals) {
	if g.want("image") {
		imageCmd := &cobra.Command{Use: "image", Short: "Manage images"}
		imageCmd.AddCommand(
			newImagesCmd(g, "ls"), newImageInspectCmd(g), newHistoryCmd(g),
			newPullCmd(g), newPushCmd(g), newTagCmd(g), newRmiCmd(g, "rm"),
			newSaveCmd(g), newLoadCmd(g), newImageMountCmd(g), newImageUnmountCmd(g),
			newImageCheckpointCmd(g),
		)
		root.AddCommand(imageCmd)
	}
	root.AddCommand(g.some(
		named{"pull", newPullCmd}, named{"push", newPushCmd},
		named{"images", func(g *globals) *cobra.Command { return newImagesCmd(g, "images") }},
		named{"tag", newTagCmd}, named{"rmi", func(g *globals) *cobra.Command { return newRmiCmd(g, "rmi") }},
		named{"save", newSaveCmd}, named{"load", newLoadCmd}, named{"history", newHistoryCmd},
		named{"login", newLoginCmd}, named{"logout", newLogoutCmd},
	)...)
}

func newPullCmd(g *globals) *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1, "an image reference, e.g. busybox:1.36"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The registry round trips overlap opening the store.
			pre := engine.Dial(cmd.Context(), g.cfg, args[0])
			return withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
				_, err := pullImage(cmd, g, eng, args[0], platform, quiet, pre)
				return err
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "pull for this platform (os/arch[/variant]) from a multi-platform image")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image name")
	return cmd
}

// pullImage runs a pull with docker-shaped output; run and create use it too.
// pre, if not nil, is the registry connection engine.Dial started.
func pullImage(cmd *cobra.Command, g *globals, eng *engine.Engine, refStr, platform string, quiet bool, pre *engine.Remote) (*engine.PullResult, error) {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	ref, err := reference.Parse(refStr)
	if err != nil {
		return nil, err
	}
	p, err := engine.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	if ref.IsLatest() && !g.cfg.Warnings.NoLatestWarning {
		how := "its latest tag"
		if ref.ImplicitTag {
			how = "an implicit latest tag"
		}
		ui.Warn(errOut, "%s is used by %s: the content can change under the same name; pin a version or digest for reproducible runs", ref.Familiar(), how)
	}
	var prog engine.Progress = engine.NoProgress{}
	var bars *ui.Progress
	if !quiet {
		if ref.ImplicitTag {
			fmt.Fprintf(out, "Using default tag: latest\n")
		}
		fmt.Fprintf(out, "%s: Pulling from %s\n", tagOrDigest(ref), reference.FamiliarName(ref.Name()))
		bars = ui.NewProgress(out, isTTY(out))
		prog = bars
	}
	ctx, cancel := signalContext()
	defer cancel()
	res, err := eng.Pull(ctx, refStr, engine.PullOptions{Platform: p, PlatformExplicit: platform != "", Progress: prog, Remote: pre})
	if bars != nil {
		bars.Done()
	}
	if err != nil {
		return nil, err
	}
	if quiet {
		fmt.Fprintln(out, ref.String())
		return res, nil
	}
	if res.Moved != nil {
		fmt.Fprintf(out, "tag %s moved: was %s, now %s\n", res.Moved.Name, res.Moved.From, res.Moved.To)
	}
	fmt.Fprintf(out, "Digest: %s\n", res.RepoDigest)
	if res.UpToDate {
		fmt.Fprintf(out, "Status: Image is up to date for %s\n", ref.Familiar())
	} else {
		fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", ref.Familiar())
	}
	fmt.Fprintln(out, ref.String())
	return res, nil
}

func tagOrDigest(ref reference.Reference) string {
	if ref.Digest != "" {
		return ref.Digest
	}
	return ref.Tag
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && ui.IsTerminal(f)
}

func newPushCmd(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1, "an image name, e.g. registry.example.com/team/app:1.0"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			out := cmd.OutOrStdout()
			ref, err := reference.Parse(args[0])
			if err != nil {
				return err
			}
			var prog engine.Progress = engine.NoProgress{}
			var bars *ui.Progress
			if !quiet {
				fmt.Fprintf(out, "The push refers to repository [%s]\n", ref.Name())
				bars = ui.NewProgress(out, isTTY(out))
				prog = bars
			}
			ctx, cancel := signalContext()
			defer cancel()
			res, err := eng.Push(ctx, args[0], prog)
			if bars != nil {
				bars.Done()
			}
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(out, res.Digest)
				return nil
			}
			fmt.Fprintf(out, "%s: digest: %s size: %d\n", tagOrDigest(ref), res.Digest, res.Size)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the digest")
	return cmd
}

// unpackedSize is the size docker shows for an image: its layers
// unpacked (the stored size if the engine could not tell).
func unpackedSize(r *engine.Image) int64 {
	if r.Unpacked > 0 {
		return r.Unpacked
	}
	return r.Size
}

// imageRow is one row of `hull images`, with docker's --format field names.
type imageRow struct {
	ID           string `json:"ID"`
	Repository   string `json:"Repository"`
	Tag          string `json:"Tag"`
	Digest       string `json:"Digest"`
	CreatedSince string `json:"CreatedSince"`
	CreatedAt    string `json:"CreatedAt"`
	Size         string `json:"Size"` // unpacked, as docker's
	// StoredSize is hull's: what the image takes in the store,
	// compressed.
	StoredSize string `json:"StoredSize"`
	// Containers, SharedSize and UniqueSize are "N/A" as docker's images
	// prints them (system df -v has the figures); VirtualSize is Size.
	Containers  string `json:"Containers"`
	SharedSize  string `json:"SharedSize"`
	UniqueSize  string `json:"UniqueSize"`
	VirtualSize string `json:"VirtualSize"`
}

func newImagesCmd(g *globals, use string) *cobra.Command {
	var quiet, digests, noTrunc, all bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: aliasesFor(use),
		Short:   "List images",
		Args:    maxArgs(1, "at most one REPOSITORY[:TAG] to match"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs, err := engine.ParseImageFilters(filters)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				fs = append(fs, engine.ImageFilter{Key: "reference", Value: args[0]})
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			recs, err := eng.ImageList(cmd.Context(), fs)
			if err != nil {
				return err
			}
			var rows []imageRow
			for _, r := range recs {
				id := r.ConfigID.String()
				if !noTrunc {
					id = r.ConfigID.Hex[:12]
				}
				base := imageRow{ID: id, Digest: "<none>", CreatedSince: ui.Ago(r.Created), CreatedAt: r.Created.Format("2006-01-02 15:04:05 -0700 MST"),
					Size: ui.Size(unpackedSize(r)), StoredSize: ui.Size(r.Size),
					Containers: "N/A", SharedSize: "N/A", UniqueSize: "N/A", VirtualSize: ui.Size(unpackedSize(r))}
				digestFor := func(repo string) string {
					for _, rd := range r.RepoDigests {
						if n, d, _ := strings.Cut(rd, "@"); n == repo {
							return d
						}
					}
					return "<none>"
				}
				if len(r.Names) == 0 {
					row := base
					row.Repository, row.Tag = "<none>", "<none>"
					if len(r.RepoDigests) > 0 {
						n, d, _ := strings.Cut(r.RepoDigests[0], "@")
						row.Digest = d
						if digests {
							row.Repository = reference.FamiliarName(n)
						}
					}
					rows = append(rows, row)
					continue
				}
				for _, n := range r.Names {
					ref, err := reference.Parse(n)
					if err != nil {
						continue
					}
					row := base
					row.Repository, row.Tag, row.Digest = reference.FamiliarName(ref.Name()), ref.Tag, digestFor(ref.Name())
					rows = append(rows, row)
				}
			}
			_ = all
			out := cmd.OutOrStdout()
			if quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(out, r.ID)
					}
				}
				return nil
			}
			if format != "" {
				return ui.Format(out, format, rows)
			}
			header := []string{"REPOSITORY", "TAG"}
			if digests {
				header = append(header, "DIGEST")
			}
			t := ui.NewTable(out, append(header, "IMAGE ID", "CREATED", "SIZE")...)
			for _, r := range rows {
				cols := []string{r.Repository, r.Tag}
				if digests {
					cols = append(cols, r.Digest)
				}
				t.Row(append(cols, r.ID, r.CreatedSince, r.Size)...)
			}
			return t.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&all, "all", "a", false, "show all images (hull keeps no intermediate images; accepted for compatibility)")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output: reference=, dangling=, label=, before=, since=")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func aliasesFor(use string) []string {
	if use == "ls" {
		return []string{"list"}
	}
	return nil
}

func newImageInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Show detailed information on images",
		Args:  minArgs(1, "at least one image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return inspectEach(cmd, format, args, func(a string) (any, error) {
				return eng.ImageInspect(cmd.Context(), a)
			})
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template")
	return cmd
}

// inspectEach prints the inspect document find gives for each argument,
// then reports the arguments it could not find (docker prints what it has
// and exits non-zero).
func inspectEach(cmd *cobra.Command, format string, args []string, find func(string) (any, error)) error {
	var docs []any
	var errs []error
	for _, a := range args {
		doc, err := find(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		docs = append(docs, doc)
	}
	if err := printInspect(cmd.OutOrStdout(), format, docs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// printInspect prints docker's inspect shape: an indented JSON array, or
// each document through a template (which sees docker's JSON field names
// too).
func printInspect(w io.Writer, format string, docs []any) error {
	if format != "" && format != "json" {
		return ui.Inspect(w, format, docs)
	}
	if docs == nil {
		docs = []any{}
	}
	data, err := json.MarshalIndent(docs, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(data))
	return err
}

// historyRow is one row of `hull history`, with docker's --format field
// names.
type historyRow struct {
	ID           string `json:"ID"`
	CreatedSince string `json:"CreatedSince"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedBy    string `json:"CreatedBy"`
	Size         string `json:"Size"`
	Comment      string `json:"Comment"`
}

// historyRowOf is docker's rendering of h: the ID short unless noTrunc,
// the command cut at 45 characters, and with human (docker's default)
// the time as an age and the size in units, else RFC 3339 and bytes.
func historyRowOf(h engine.HistoryEntry, noTrunc, human bool) historyRow {
	by := h.CreatedBy
	if !noTrunc && len(by) > 45 {
		by = by[:44] + "…"
	}
	r := historyRow{ID: shortImageID(h.ID, noTrunc), CreatedSince: ui.Ago(h.Created), CreatedAt: h.Created.Format(time.RFC3339),
		CreatedBy: by, Size: ui.Size(h.Size), Comment: h.Comment}
	if !human {
		r.CreatedSince, r.Size = r.CreatedAt, strconv.FormatInt(h.Size, 10)
	}
	return r
}

func newHistoryCmd(g *globals) *cobra.Command {
	var noTrunc, quiet, human bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image, with each layer's size and how many images share it",
		Args:  exactArgs(1, "an image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			hist, err := eng.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format != "" {
				rows := make([]historyRow, len(hist))
				for i, h := range hist {
					rows[i] = historyRowOf(h, noTrunc, human)
				}
				return ui.Format(out, format, rows)
			}
			if quiet {
				for _, h := range hist {
					fmt.Fprintln(out, shortImageID(h.ID, noTrunc))
				}
				return nil
			}
			t := ui.NewTable(out, "IMAGE", "CREATED", "CREATED BY", "SIZE", "SHARED BY", "COMMENT")
			for _, h := range hist {
				r := historyRowOf(h, noTrunc, human)
				shared := ""
				if h.Layer != "" {
					shared = fmt.Sprintf("%d image(s)", h.SharedBy)
				}
				t.Row(r.ID, r.CreatedSince, r.CreatedBy, r.Size, shared, r.Comment)
			}
			return t.Flush()
		}),
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	cmd.Flags().StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func shortImageID(id string, noTrunc bool) string {
	if noTrunc || !strings.HasPrefix(id, "sha256:") {
		return id
	}
	return strings.TrimPrefix(id, "sha256:")[:12]
}

func newTagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2, "SOURCE_IMAGE and TARGET_IMAGE"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return eng.ImageTag(cmd.Context(), args[0], args[1])
		}),
	}
}

func newRmiCmd(g *globals, use string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove images (untag, and delete what no name refers to)",
		Args:  minArgs(1, "at least one image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			out := cmd.OutOrStdout()
			var errs []error
			for _, a := range args {
				res, err := eng.ImageRemove(cmd.Context(), a, force)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, u := range res.Untagged {
					fmt.Fprintf(out, "Untagged: %s\n", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintf(out, "Deleted: %s\n", d)
				}
			}
			return errors.Join(errs...)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of an image named by several repositories")
	return cmd
}

func newSaveCmd(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save images to a tar archive (docker-archive or oci-archive)",
		Args:  minArgs(1, "at least one image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return writeArchive(cmd, output, func(w io.Writer) error {
				return eng.ImageSave(cmd.Context(), args, format, w)
			})
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file instead of stdout")
	cmd.Flags().StringVar(&format, "format", engine.ArchiveDocker, "archive format: docker-archive or oci-archive")
	return cmd
}

// writeArchive runs write into the file output, whole or not at all (a
// temp file renamed into place), or, without output, into stdout unless
// it is a terminal, as docker save and export do.
func writeArchive(cmd *cobra.Command, output string, write func(io.Writer) error) error {
	if output == "" {
		w := cmd.OutOrStdout()
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return errors.New("cowardly refusing to write an archive to a terminal: use -o FILE or redirect")
		}
		return write(w)
	}
	tmp := output + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, output)
}

func newLoadCmd(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a docker-archive or oci-archive tarball",
		Args:  cobra.NoArgs,
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			path := input
			if path == "" {
				// The archive is read more than once: spool stdin to a file.
				f, err := os.CreateTemp("", "hull-load-*.tar")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				if _, err := io.Copy(f, cmd.InOrStdin()); err != nil {
					f.Close()
					return fmt.Errorf("load: read stdin: %w", err)
				}
				f.Close()
				path = f.Name()
			}
			res, err := eng.ImageLoad(cmd.Context(), path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, n := range res.Names {
				fmt.Fprintf(out, "Loaded image: %s\n", n)
			}
			for _, id := range res.IDs {
				fmt.Fprintf(out, "Loaded image ID: %s\n", id)
			}
			_ = quiet
			return nil
		}),
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from a tar archive file instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}

func newLoginCmd(g *globals) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (credentials stored in the Docker config.json format)",
		Args:  maxArgs(1, "at most one registry server"),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
			}
			if passwordStdin {
				if password != "" {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
				data, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			if user == "" || password == "" {
				return errors.New("login needs --username and --password or --password-stdin")
			}
			if !passwordStdin {
				ui.Warn(cmd.ErrOrStderr(), "using --password on the command line is insecure: use --password-stdin")
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := eng.Login(cmd.Context(), server, user, password); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  maxArgs(1, "at most one registry server"),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			found, err := eng.Logout(server)
			if err != nil {
				return err
			}
			if server == "" {
				server = reference.DefaultDomain
			}
			if !found {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", server)
			return nil
		},
	}
}
