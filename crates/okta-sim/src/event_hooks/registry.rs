//! The org's event hooks and Okta's rules for changing them: at most 25 ACTIVE at once,
//! only an INACTIVE hook may be deleted, a hook whose URI changes must be verified again.
//! Pure data; the HTTP layer lives elsewhere.

use super::hook::{Channel, EventHook, HookSpec, Status};
use crate::directory::now;
use crate::errors::{OktaError, random_id};

pub const MAX_ACTIVE: usize = 25;

/// Who created a hook: the simulator's admin, as the System Log's actor.
const CREATED_BY: &str = "okta-sim";

#[derive(Debug, Default)]
pub struct Registry {
    /// In creation order, the order Okta lists them in.
    hooks: Vec<EventHook>,
}

fn not_found(id: &str) -> OktaError {
    OktaError::not_found(format!("{id} (EventHook)"))
}

impl Registry {
    pub fn list(&self) -> &[EventHook] {
        &self.hooks
    }

    pub fn get(&self, id: &str) -> Result<&EventHook, OktaError> {
        self.hooks
            .iter()
            .find(|h| h.id == id)
            .ok_or_else(|| not_found(id))
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut EventHook, OktaError> {
        self.hooks
            .iter_mut()
            .find(|h| h.id == id)
            .ok_or_else(|| not_found(id))
    }

    fn refuse_another_active(&self) -> Result<(), OktaError> {
        if self.hooks.iter().filter(|h| h.is_active()).count() >= MAX_ACTIVE {
            return Err(OktaError::validation(format!(
                "status: this org already has {MAX_ACTIVE} ACTIVE event hooks, the most \
                 Okta allows; deactivate one first"
            )));
        }
        Ok(())
    }

    /// A new hook, ACTIVE and UNVERIFIED as Okta creates them.
    pub fn create(&mut self, spec: HookSpec) -> Result<&EventHook, OktaError> {
        self.refuse_another_active()?;
        let at = now();
        self.hooks.push(EventHook {
            id: random_id("who", 17),
            spec,
            status: Status::Active,
            verified: false,
            created: at.clone(),
            created_by: CREATED_BY.into(),
            last_updated: at,
        });
        Ok(&self.hooks[self.hooks.len() - 1])
    }

    pub fn replace(&mut self, id: &str, spec: HookSpec) -> Result<&EventHook, OktaError> {
        let hook = self.get_mut(id)?;
        if hook.spec.channel.uri != spec.channel.uri {
            hook.verified = false;
        }
        hook.spec = spec;
        hook.last_updated = now();
        Ok(hook)
    }

    /// Activates or deactivates; the same status again changes nothing.
    pub fn set_status(&mut self, id: &str, status: Status) -> Result<&EventHook, OktaError> {
        let current = self.get(id)?.status;
        if current != status && status == Status::Active {
            self.refuse_another_active()?;
        }
        let hook = self.get_mut(id)?;
        if current != status {
            hook.status = status;
            hook.last_updated = now();
        }
        Ok(hook)
    }

    pub fn delete(&mut self, id: &str) -> Result<EventHook, OktaError> {
        let position = self
            .hooks
            .iter()
            .position(|h| h.id == id)
            .ok_or_else(|| not_found(id))?;
        if self.hooks[position].is_active() {
            return Err(OktaError::validation(format!(
                "status: event hook {id} is ACTIVE; only an INACTIVE event hook can be \
                 deleted, deactivate it first"
            )));
        }
        Ok(self.hooks.remove(position))
    }

    /// Records a verification's outcome, unless the hook's URI changed (or the hook was
    /// deleted) while it ran: that verification was of another endpoint.
    pub fn verified(&mut self, id: &str, checked: &Channel, passed: bool) -> Option<&EventHook> {
        let hook = self.get_mut(id).ok()?;
        if hook.spec.channel.uri == checked.uri {
            hook.verified = passed;
            hook.last_updated = now();
        }
        Some(hook)
    }

    /// The ids of the hooks an event of this type goes to now.
    pub fn receivers(&self, event_type: &str) -> Vec<String> {
        self.hooks
            .iter()
            .filter(|h| h.receives(event_type))
            .map(|h| h.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uri: &str) -> HookSpec {
        HookSpec {
            name: "hook".into(),
            description: None,
            events: vec!["group.user_membership.add".into()],
            channel: Channel {
                uri: uri.into(),
                headers: vec![],
                auth: None,
            },
        }
    }

    #[test]
    fn the_26th_active_hook_is_refused_but_an_inactive_one_may_be_added_after_deactivation() {
        let mut registry = Registry::default();
        let ids: Vec<String> = (0..MAX_ACTIVE)
            .map(|_| registry.create(spec("https://a")).expect("hook").id.clone())
            .collect();
        assert!(registry.create(spec("https://a")).is_err());
        registry
            .set_status(&ids[0], Status::Inactive)
            .expect("deactivate");
        let extra = registry
            .create(spec("https://a"))
            .expect("room again")
            .id
            .clone();
        assert!(registry.set_status(&ids[0], Status::Active).is_err());
        assert!(
            registry.set_status(&extra, Status::Active).is_ok(),
            "already active"
        );
    }

    #[test]
    fn only_inactive_hooks_are_deleted() {
        let mut registry = Registry::default();
        let id = registry.create(spec("https://a")).expect("hook").id.clone();
        assert!(registry.delete(&id).is_err());
        registry.set_status(&id, Status::Inactive).expect("off");
        assert_eq!(registry.delete(&id).expect("deleted").id, id);
        assert_eq!(registry.get(&id).expect_err("gone").code, "E0000007");
    }

    #[test]
    fn only_active_verified_subscribed_hooks_receive_and_a_new_uri_needs_verifying_again() {
        let mut registry = Registry::default();
        let id = registry.create(spec("https://a")).expect("hook").id.clone();
        assert!(registry.receivers("group.user_membership.add").is_empty());
        let channel = registry.get(&id).expect("hook").spec.channel.clone();
        registry.verified(&id, &channel, true);
        assert_eq!(
            registry.receivers("group.user_membership.add"),
            vec![id.clone()]
        );
        assert!(registry.receivers("group.lifecycle.create").is_empty());
        registry.replace(&id, spec("https://b")).expect("replace");
        assert!(registry.receivers("group.user_membership.add").is_empty());
        registry.verified(&id, &channel, true);
        assert!(
            registry.receivers("group.user_membership.add").is_empty(),
            "a verification of the old URI does not count"
        );
    }
}
