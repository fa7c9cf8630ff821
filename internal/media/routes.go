package media

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type idPath struct {
	ID string `path:"id" maxLength:"64" doc:"image id (med_…)"`
}

// RegisterRoutes adds the media routes. Uploading, reading and deleting
// take an end user's access token or staff credentials (checked in the
// handlers: end users see their own images, those outside conversations
// and those of conversations they are members of); the content route also
// takes a signed URL instead.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Media"}
	httpapi.HandleOp[Image](s, huma.Operation{OperationID: "upload-media", Method: http.MethodPost, Path: "/api/v1/media", Tags: tags,
		Summary: "Upload an image", DefaultStatus: http.StatusCreated,
		Description: "multipart/form-data with the image in field `file`: JPEG, PNG, WebP or GIF, detected from the content (not the name or " +
			"Content-Type). The tenant's limits (bytes, pixels, GIF frames; GET /api/v1/settings/media) are checked from the header before " +
			"any pixel is decoded. EXIF, GPS and every other metadata block are removed (the orientation is applied first). The variants " +
			"(thumbnail, medium, large, and the original re-encoded) are made once in a worker pool; the answer waits for them up to a " +
			"few seconds, else comes with status pending. The same bytes by the same owner for the same conversation answer 200 with the " +
			"earlier upload. An end user's access token uploads as that user; a key with the write scope may name end_user_id.",
		Parameters: []*huma.Param{
			{Name: "end_user_id", In: "query", Description: "with an API key: the end user the image belongs to", Schema: &huma.Schema{Type: "string", MaxLength: ptr(128)}},
			{Name: "conversation_id", In: "query", Description: "only this conversation's members may fetch the image (the owner must be one)", Schema: &huma.Schema{Type: "string", MaxLength: ptr(64)}},
		},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{"multipart/form-data": {Schema: &huma.Schema{Type: "object",
			Properties: map[string]*huma.Schema{"file": {Type: "string", Format: "binary"}}, Required: []string{"file"}},
			Example: map[string]any{"file": "(the image's bytes, e.g. photo.jpg)"}}}},
		Responses: map[string]*huma.Response{"200": {Description: "the same image was uploaded before: that upload"}},
		Errors:    []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType},
	}, httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := readFile(r)
		if err != nil {
			httpapi.WriteError(w, r, svc.log, err)
			return
		}
		q := r.URL.Query()
		img, created, err := svc.Upload(r.Context(), UploadInput{Data: data, OwnerID: q.Get("end_user_id"), ConversationID: q.Get("conversation_id")})
		if err != nil {
			httpapi.WriteError(w, r, svc.log, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		b, err := httpapi.EncodeJSON(img)
		if err != nil {
			httpapi.WriteError(w, r, svc.log, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}))
	httpapi.Register(s, huma.Operation{OperationID: "get-media", Method: http.MethodGet, Path: "/api/v1/media/{id}", Tags: tags,
		Summary: "Get an image with fresh signed URLs",
		Description: "For staff (read scope), the owner, and, for an image of a conversation, its members (others: 403 not_a_member). " +
			"The URLs expire at expires_at: a link shared outside the conversation stops working.",
		Errors: []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound}},
		httpapi.ScopePublic, func(ctx context.Context, in *idPath) (*httpapi.Body[Image], error) {
			if abacus.PrincipalFrom(ctx) == nil {
				return nil, unauthenticated()
			}
			return httpapi.Reply(svc.Get(ctx, in.ID))
		})
	httpapi.HandleOp[struct{}](s, huma.Operation{OperationID: "get-media-content", Method: http.MethodGet, Path: "/api/v1/media/{id}/content", Tags: tags,
		Summary: "Fetch an image variant",
		Description: "The bytes of a variant: variant= names it, or w= asks for the smallest at least that many pixels wide (else the original). " +
			"With a signed URL (t, u, exp, sig, as the API returns them) no credentials are needed until exp; otherwise as GET /api/v1/media/{id}. " +
			"Answers carry a strong ETag and Cache-Control: private, max-age=31536000, immutable (a variant's bytes never change); If-None-Match answers 304. " +
			"Variants are JPEG for JPEG and lossy WebP uploads, PNG otherwise (WebP is decoded but not encoded: Abacus has no pure-Go WebP encoder), " +
			"whatever Accept says. 409 media_processing (Retry-After) while the variants are being made.",
		Parameters: []*huma.Param{
			{Name: "variant", In: "query", Schema: &huma.Schema{Type: "string", Enum: []any{Thumbnail, Medium, Large, Original}}},
			{Name: "w", In: "query", Description: "the width the client needs, in pixels", Schema: &huma.Schema{Type: "integer", Minimum: fptr(1)}},
			{Name: "t", In: "query", Description: "signed URL: the tenant", Schema: &huma.Schema{Type: "string"}},
			{Name: "u", In: "query", Description: "signed URL: the end user it was issued to", Schema: &huma.Schema{Type: "string"}},
			{Name: "exp", In: "query", Description: "signed URL: expiry, unix seconds", Schema: &huma.Schema{Type: "integer"}},
			{Name: "sig", In: "query", Description: "signed URL: the signature", Schema: &huma.Schema{Type: "string"}},
		},
		Responses: map[string]*huma.Response{"304": {Description: "not modified"}},
		Errors:    []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict},
	}, httpapi.ScopePublic, http.HandlerFunc(svc.ServeContent))
	// HandleOp documents a JSON answer; this one answers the image itself.
	if p := s.API.OpenAPI().Paths["/api/v1/media/{id}/content"]; p != nil && p.Get != nil {
		p.Get.Responses["200"] = &huma.Response{Description: "the variant's bytes", Content: map[string]*huma.MediaType{
			"image/jpeg": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
			"image/png":  {Schema: &huma.Schema{Type: "string", Format: "binary"}},
			"image/gif":  {Schema: &huma.Schema{Type: "string", Format: "binary"}}}}
	}
	httpapi.Register(s, huma.Operation{OperationID: "delete-media", Method: http.MethodDelete, Path: "/api/v1/media/{id}", Tags: tags,
		Summary: "Delete an image", DefaultStatus: http.StatusNoContent,
		Description: "By its owner or staff with the write scope. It disappears at once; its bytes are erased after the tenant's retention window.",
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound}},
		httpapi.ScopePublic, func(ctx context.Context, in *idPath) (*struct{}, error) {
			if abacus.PrincipalFrom(ctx) == nil {
				return nil, unauthenticated()
			}
			return nil, svc.Delete(ctx, in.ID)
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-media-settings", Method: http.MethodGet, Path: "/api/v1/settings/media", Tags: tags,
		Summary: "Get the media limits and retention"},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[MediaSettings], error) {
			return httpapi.Reply(svc.Settings(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "put-media-settings", Method: http.MethodPut, Path: "/api/v1/settings/media", Tags: tags,
		Summary: "Set the media limits and retention"},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[MediaSettings]) (*httpapi.Body[MediaSettings], error) {
			return httpapi.Reply(svc.SaveSettings(ctx, in.Body))
		})
}

func ptr(n int) *int          { return &n }
func fptr(n float64) *float64 { return &n }

func unauthenticated() error {
	return abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "send Authorization: Bearer <end user access token or api key>")
}

// readFile returns the bytes of multipart field "file".
func readFile(r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, abacus.Errorf(abacus.KindUnsupportedMediaType, "unsupported_media_type",
			"send the image as multipart/form-data in field file").WithField("header.Content-Type", "unsupported media type")
	}
	if abacus.PrincipalFrom(r.Context()) == nil {
		return nil, unauthenticated()
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, abacus.Invalid("invalid_multipart", "the multipart body cannot be read: %v", err).WithField("body", "malformed multipart body")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, abacus.Invalid("file_required", "the multipart body has no field named file").WithField("body.file", "required")
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, abacus.Errorf(abacus.KindTooLarge, "body_too_large", "the request body is over %d bytes", mbe.Limit)
			}
			return nil, abacus.Invalid("invalid_multipart", "the multipart body cannot be read: %v", err).WithField("body", "malformed multipart body")
		}
		if part.FormName() != "file" {
			_ = part.Close()
			continue
		}
		data, err := io.ReadAll(part)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, abacus.Errorf(abacus.KindTooLarge, "body_too_large", "the request body is over %d bytes", mbe.Limit)
			}
			if strings.Contains(err.Error(), "multipart") || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, abacus.Invalid("invalid_multipart", "the multipart body ends too early").WithField("body.file", "truncated")
			}
			return nil, err
		}
		return data, nil
	}
}
