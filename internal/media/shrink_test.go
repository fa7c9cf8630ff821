package media

import (
	"image"
	"testing"
)

func TestShrinkYCbCrAveragesBlocks(t *testing.T) {
	t.Parallel()
	m := image.NewYCbCr(image.Rect(0, 0, 5, 3), image.YCbCrSubsampleRatio420) // chroma 3 × 2
	for i := range m.Y {
		m.Y[i] = byte(10 * i)
	}
	copy(m.Cb, []byte{10, 20, 30, 40, 50, 60})
	copy(m.Cr, []byte{1, 1, 1, 1, 1, 250})
	s := shrinkYCbCr(m, 2)
	if s.Rect != image.Rect(0, 0, 2, 1) || s.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		t.Fatalf("shrunk to %v %v", s.Rect, s.SubsampleRatio)
	}
	// Y rows 0–1: 0 10 20 30 40 / 50 60 70 80 90 → blocks (0,10,50,60) and (20,30,70,80).
	if s.Y[0] != 30 || s.Y[1] != 50 {
		t.Errorf("Y = %v, want [30 50]", s.Y[:2])
	}
	// Chroma 1 × 1 from the 2 × 2 block of a 3 × 2 plane.
	if s.Cb[0] != 30 || s.Cr[0] != 1 {
		t.Errorf("Cb, Cr = %d, %d; want 30, 1", s.Cb[0], s.Cr[0])
	}
	if shrinkYCbCr(m.SubImage(image.Rect(1, 1, 5, 3)).(*image.YCbCr), 2) != nil {
		t.Error("an image not at the origin is not shrunk")
	}
}
