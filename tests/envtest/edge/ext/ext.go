// Package ext declares the (empty) extension types traefik's dynamic configuration embeds.
package ext

// HTTP is embedded in traefik's dynamic.HTTP; the open-source build adds no fields.
type HTTP struct{}

// Router is embedded in traefik's dynamic.Router; the open-source build adds no fields.
type Router struct{}
