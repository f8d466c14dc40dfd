// Placeholder: shows the plan text. The real UI replaces this file.
fetch('/api/plan').then(r => r.json()).then(p => {
  document.getElementById('state').textContent = p.text || '(nothing to do)';
});
