package image

// LayerState is where one blob of a pull or push stands.
type LayerState string

const (
	StateWaiting     LayerState = "Waiting"
	StateDownloading LayerState = "Downloading"
	StateRetrying    LayerState = "Retrying"
	StateVerifying   LayerState = "Verifying Checksum"
	StateDownloaded  LayerState = "Download complete"
	StateExtracting  LayerState = "Extracting"
	StateDone        LayerState = "Pull complete"
	StateExists      LayerState = "Already exists"
	StatePushing     LayerState = "Pushing"
	StatePushed      LayerState = "Pushed"
	StateMounted     LayerState = "Layer already exists"
)

// Progress receives per-layer updates. ID is the short (12 hex) digest the
// way docker shows it; Current and Total are bytes (Total 0 if unknown).
// Implementations must be safe for concurrent use.
type Progress interface {
	Update(id string, state LayerState, current, total int64)
}

// Discard is a Progress that shows nothing.
type Discard struct{}

// Update implements Progress.
func (Discard) Update(string, LayerState, int64, int64) {}

func shortID(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}
