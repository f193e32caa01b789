// traefik v3 imports github.com/traefik/traefik/dynamic/ext, an extension point whose module
// lives in traefik's repository under another path and is not published, so a build of
// traefik as a dependency cannot download it. traefik's open-source build replaces it with
// empty types; this module declares the same empty types.
module github.com/traefik/traefik/dynamic/ext

go 1.26.0
