package app_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// jpegBytes is a small JPEG.
func jpegBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(i)
	}
	m.Set(0, 0, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts data as multipart field "file" (named as given).
func (a *testApp) upload(t *testing.T, cred, query, name string, data []byte) response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/api/v1/media"+query, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+cred)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func fetch(t *testing.T, url string) response {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// exerciseMediaEvents uploads and deletes an image (media.uploaded,
// media.deleted) through the real HTTP API.
func exerciseMediaEvents(t *testing.T, a *testApp) {
	t.Helper()
	r := a.upload(t, a.key, "", "probe.jpg", jpegBytes(t, 40, 30))
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	if d := a.do(http.MethodDelete, "/api/v1/media/"+id, a.key, nil); d.status != http.StatusNoContent {
		t.Fatalf("delete media: %d %s", d.status, d.body)
	}
}

// TestMediaAndNearbyOverHTTP goes through the whole program: an end user
// signs up, an API key uploads on their behalf (a PNG named .jpg is still
// a PNG; SVG is refused), each variant is fetched by its signed URL, the
// user publishes a location and is found nearby; bad coordinates are
// refused by name.
func TestMediaAndNearbyOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			eu := newEndUsers(t, a, a.key)
			sign := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "ada@media.test", "password": "quite a long passphrase 77"})
			user := sign["user"].(map[string]any)["id"].(string)
			tok := sign["access_token"].(string)

			r := a.upload(t, a.key, "?end_user_id="+user, "photo.jpg", jpegBytes(t, 900, 600))
			if r.status != http.StatusCreated {
				t.Fatalf("upload: %d %s", r.status, r.body)
			}
			img := r.json(t)
			if img["content_type"] != "image/jpeg" || img["width"].(float64) != 900 || img["owner_id"] != user {
				t.Fatalf("upload = %v", img)
			}
			for _, v := range []string{"thumbnail", "medium", "large", "original"} {
				u := img["variants"].(map[string]any)[v].(string)
				if !strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "http") {
					t.Fatalf("%s url %q", v, u)
				}
				if strings.HasPrefix(u, "/") {
					u = a.base + u
				}
				got := fetch(t, u)
				if got.status != 200 || got.header.Get("Content-Type") != "image/jpeg" || got.header.Get("ETag") == "" {
					t.Fatalf("%s: %d %s", v, got.status, got.body)
				}
			}
			// The end user's own token reads it; a PNG named .jpg is a PNG.
			if g := a.do(http.MethodGet, "/api/v1/media/"+img["id"].(string), tok, nil); g.status != 200 {
				t.Fatalf("get as owner: %d %s", g.status, g.body)
			}
			if p := a.upload(t, tok, "", "x.jpg", pngBytes()); p.status != http.StatusCreated || p.json(t)["format"] != "png" {
				t.Fatalf("PNG named .jpg: %d %s", p.status, p.body)
			}
			if s := a.upload(t, tok, "", "x.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)); s.status != 400 || problemCode(s.body) != "media_type_unsupported" {
				t.Fatalf("SVG: %d %s", s.status, s.body)
			}

			loc := a.do(http.MethodPut, "/api/v1/end-users/"+user+"/location", a.key, map[string]any{"lat": 52.52, "lon": 13.405})
			if loc.status != 200 {
				t.Fatalf("location: %d %s", loc.status, loc.body)
			}
			near := a.do(http.MethodGet, "/api/v1/nearby?lat=52.53&lon=13.41&radius_km=5&limit=10", a.key, nil)
			if near.status != 200 {
				t.Fatalf("nearby: %d %s", near.status, near.body)
			}
			data := near.json(t)["data"].([]any)
			if len(data) != 1 || data[0].(map[string]any)["end_user_id"] != user || data[0].(map[string]any)["distance_km"].(float64) <= 0 {
				t.Fatalf("nearby = %s", near.body)
			}
			for _, bad := range []string{"lat=91&lon=0&radius_km=1", "lat=0&lon=181&radius_km=1", "lat=NaN&lon=0&radius_km=1",
				"lat=0&lon=0&radius_km=0", "lat=0&lon=0&radius_km=40000"} {
				if r := a.do(http.MethodGet, "/api/v1/nearby?"+bad, a.key, nil); r.status != 400 || problemCode(r.body) != "nearby_query_invalid" {
					t.Errorf("nearby?%s: %d %s", bad, r.status, r.body)
				}
			}
			if r := a.do(http.MethodPut, "/api/v1/end-users/"+user+"/location", a.key, map[string]any{"lat": -90.5, "lon": 0}); r.status != 400 {
				t.Errorf("lat -90.5: %d %s", r.status, r.body)
			}
			// Deleting a message deletes the image it carried (the media
			// role consumes message.deleted).
			other := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "bob@media.test", "password": "quite a long passphrase 78"})
			conv := a.do(http.MethodPost, "/api/v1/conversations", a.key, map[string]any{"kind": "private",
				"member_ids": []string{user, other["user"].(map[string]any)["id"].(string)}})
			if conv.status != http.StatusCreated {
				t.Fatalf("conversation: %d %s", conv.status, conv.body)
			}
			convID := conv.json(t)["id"].(string)
			att := a.upload(t, tok, "?conversation_id="+convID, "att.jpg", jpegBytes(t, 60, 40))
			if att.status != http.StatusCreated {
				t.Fatalf("attachment upload: %d %s", att.status, att.body)
			}
			attImg := att.json(t)
			msg := a.do(http.MethodPost, "/api/v1/conversations/"+convID+"/messages", a.key, map[string]any{"sender_id": user, "client_id": "m1", "text": "a photo",
				"attachments": []map[string]any{{"type": "image", "url": attImg["variants"].(map[string]any)["large"], "media_type": "image/jpeg"}}})
			if msg.status != http.StatusCreated {
				t.Fatalf("message: %d %s", msg.status, msg.body)
			}
			if d := a.do(http.MethodDelete, "/api/v1/conversations/"+convID+"/messages/1", a.key, nil); d.status != http.StatusOK {
				t.Fatalf("delete message: %d %s", d.status, d.body)
			}
			waitFor(t, func() bool {
				return a.do(http.MethodGet, "/api/v1/media/"+attImg["id"].(string), a.key, nil).status == http.StatusNotFound
			})
			if g := a.do(http.MethodGet, "/api/v1/media/"+img["id"].(string), a.key, nil); g.status != http.StatusOK {
				t.Fatalf("an image the message did not carry: %d %s", g.status, g.body)
			}
			// Deleting the end user deletes their images (the media role
			// consumes end_user.deleted).
			if r := a.do(http.MethodDelete, "/api/v1/end-users/"+user, a.key, nil); r.status != http.StatusNoContent {
				t.Fatalf("delete end user: %d %s", r.status, r.body)
			}
			waitFor(t, func() bool {
				return a.do(http.MethodGet, "/api/v1/media/"+img["id"].(string), a.key, nil).status == http.StatusNotFound
			})
		})
	}
}

// pngBytes is a 3×2 PNG.
func pngBytes() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 3, 2)))
	return b.Bytes()
}
