package install

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"

	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/internal/atomicfile"
)

// binary keeps the host's copy of kuma-cni identical to the image's.
type binary struct {
	src, dst string
	size     int64
	sum      []byte
	// seen is the host's copy as last found or written: while the file is the same, with the same
	// size, time and mode, it is not read again.
	seen os.FileInfo
}

func newBinary(src, dst string) (*binary, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &binary{src: src, dst: dst, size: size, sum: h.Sum(nil)}, nil
}

// ensure copies the binary when the host's copy is missing or differs, and reports whether it did.
func (b *binary) ensure() (bool, error) {
	fi, err := os.Stat(b.dst)
	if err == nil && b.seen != nil && os.SameFile(fi, b.seen) &&
		fi.Size() == b.seen.Size() && fi.ModTime().Equal(b.seen.ModTime()) && fi.Mode() == b.seen.Mode() {
		return false, nil
	}
	if err == nil && fi.Mode() == 0o755 && fi.Size() == b.size && b.same() {
		b.seen = fi
		return false, nil
	}
	seen, err := b.copy()
	if err != nil {
		return false, err
	}
	b.seen = seen
	return true, nil
}

// same reports whether the host's copy has the image's content.
func (b *binary) same() bool {
	f, err := os.Open(b.dst)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	return err == nil && bytes.Equal(h.Sum(nil), b.sum)
}

// copy writes the binary atomically, so that the runtime never executes a half-written plugin. It
// returns the file as written, before the rename: a change made right after the rename (its event
// still to come) must not be remembered as ours.
func (b *binary) copy() (os.FileInfo, error) {
	src, err := os.Open(b.src)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return atomicfile.Write(b.dst, src, 0o755, atomicfile.TempDir(conflist.TempDir))
}

// remove deletes the host's copy; reports whether there was one.
func (b *binary) remove() (bool, error) {
	err := os.Remove(b.dst)
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil, err
}
