// The sign-in page's script, a file of its own so that the page's Content-Security-Policy
// can allow only this server's scripts.
import {login, register, session} from '/js/api.js';
if (session()) location.replace('/dashboard.html');
const tabs = {login: document.querySelector('#tab-login'), register: document.querySelector('#tab-register')};
for (const [name, tab] of Object.entries(tabs)) {
  tab.addEventListener('click', () => {
    for (const [other, otherTab] of Object.entries(tabs)) {
      otherTab.setAttribute('aria-selected', String(other === name));
      document.querySelector('#' + other).hidden = other !== name;
    }
    document.querySelector(`#${name} input`).focus();
  });
}
const error = document.querySelector('#auth-error');
async function attempt(action) {
  error.textContent = '';
  try { await action(); location.assign('/dashboard.html'); } catch (failure) { error.textContent = failure.message; }
}
document.querySelector('#login').addEventListener('submit', event => {
  event.preventDefault();
  attempt(() => login(document.querySelector('#login-email').value, document.querySelector('#login-password').value));
});
document.querySelector('#register').addEventListener('submit', event => {
  event.preventDefault();
  attempt(() => register(document.querySelector('#register-name').value, document.querySelector('#register-email').value,
                         document.querySelector('#register-password').value));
});
