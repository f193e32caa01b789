// The browser rig's observer: see OBSERVER_JS in tests/support/site.rs.
(function () {
  var me = document.currentScript;
  var violations = [];
  document.addEventListener('securitypolicyviolation', function (e) {
    violations.push({ blockedUri: e.blockedURI, violatedDirective: e.violatedDirective,
                      effectiveDirective: e.effectiveDirective, disposition: e.disposition });
  });
  window.addEventListener('load', function () {
    setTimeout(function () {
      var ran = window.probesRan || {};
      var report = JSON.stringify({
        url: location.href.split('#')[0],
        scripts: [].filter.call(document.scripts, function (s) { return s !== me; })
          .map(function (s) { return { url: s.src, done: ran[s.src] === true }; }),
        images: [].map.call(document.images, function (i) {
          return { url: i.src, done: i.complete && i.naturalWidth > 0 };
        }),
        violations: violations
      });
      var prefix = '#observed=';
      if (location.hash.indexOf(prefix) === 0) {
        location.replace(location.hash.slice(prefix.length) + '?report=' + encodeURIComponent(report));
      } else {
        var pre = document.createElement('pre');
        pre.id = 'observed';
        pre.textContent = report;
        document.body.appendChild(pre);
      }
    }, 0);
  });
})();
