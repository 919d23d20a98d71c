package compose

import (
	"fmt"
	"log/slog"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/selfservice"
	"github.com/portcullis/portcullis/plugins/directory"
)

// OpenDirectory opens the configured customer directory: nil, nil when
// none is configured. The file is read and checked, the token file's mode
// checked; nothing is asked over the network. close releases it.
func OpenDirectory(c config.Directory, logger *slog.Logger) (dir selfservice.Directory, close func(), err error) {
	if c.File == "" && c.URL == "" {
		return nil, func() {}, nil
	}
	dir, err = directory.Open(directory.Config{File: c.File, URL: c.URL, TokenFile: c.TokenFile, CAFile: c.CAFile,
		Timeout: c.Timeout, Logger: logger})
	if err != nil {
		return nil, nil, fmt.Errorf("directory: %w", trimPrefix(err))
	}
	close = func() {}
	if h, ok := dir.(*directory.HTTP); ok {
		close = h.Close
	}
	return dir, close, nil
}

// trimPrefix drops the plugin's own "directory: " from err's text, which
// OpenDirectory puts back once.
func trimPrefix(err error) error {
	const p = "directory: "
	if s := err.Error(); len(s) > len(p) && s[:len(p)] == p {
		return fmt.Errorf("%s", s[len(p):])
	}
	return err
}

// reloadDirectory re-reads the directory's file or token file (SIGHUP); a
// failure keeps what was loaded.
func reloadDirectory(dir selfservice.Directory, logger *slog.Logger) {
	r, ok := dir.(directory.Reloader)
	if !ok {
		return
	}
	if err := r.Reload(); err != nil {
		logger.Error("customer directory reload failed; the records loaded before stay in use", "error", err)
		return
	}
	logger.Info("customer directory reloaded")
}
