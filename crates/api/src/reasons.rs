//! Every reason a condition of an OktaGroupBinding can give, in one list: tools, alerts
//! and the docs key on them, so a reason is added here or nowhere (a test checks that
//! docs/reference/conditions.md explains each one).

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Why a condition has its status (CamelCase, as `metav1.Condition` wants).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }
        }
    };
}

reasons! {
    /// GroupVerified: Okta has exactly one group of that name, the one recorded.
    Found,
    /// GroupVerified: Okta says there is no such group.
    GroupMissing,
    /// GroupVerified: the name now belongs to a different group id.
    GroupReplaced,
    /// GroupVerified: the name cannot reach a token.
    OutsideAllowedPrefix,
    /// GroupVerified: Okta's Everyone.
    BuiltInGroup,
    /// GroupVerified: several groups have the name.
    AmbiguousName,
    /// GroupVerified: Okta could not be reached.
    OktaUnreachable,
    /// GroupVerified: Okta did not answer in time.
    OktaTimeout,
    /// GroupVerified: Okta answered 5xx.
    OktaServerError,
    /// GroupVerified: Okta's rate limit is exhausted.
    OktaRateLimited,
    /// GroupVerified: Okta refused the operator's credentials.
    OktaUnauthorized,
    /// GroupVerified: the credentials lack a scope or role.
    OktaForbidden,
    /// GroupVerified: Okta refused the request as malformed.
    OktaBadRequest,
    /// GroupVerified: Okta's answer could not be read.
    OktaBadAnswer,
    /// GroupVerified: the operator's Okta settings are unusable.
    OktaConfig,
    /// BindingsApplied: the bindings are as declared.
    Applied,
    /// BindingsApplied: every binding was removed.
    Revoked,
    /// BindingsApplied: the bindings were kept (onGroupMissing: Retain).
    Retained,
    /// BindingsApplied: a binding of that name belongs to someone else.
    Conflict,
    /// BindingsApplied: a named namespace does not exist.
    NamespaceMissing,
    /// BindingsApplied: a write to the apiserver failed.
    ApplyFailed,
    /// BindingsApplied: a binding of the object is being deleted but kept by finalizers,
    /// so it still grants.
    BindingTerminating,
    /// BindingsApplied: Okta has not verified the group yet.
    AwaitingVerification,
    /// BindingsApplied: the members of a verified group could not be read (Users mode).
    AwaitingMembers,
    /// Ready: verified and applied.
    Ready,
    /// Ready: a referenced role does not exist.
    RoleMissing,
    /// Ready and Paused: `spec.paused` is true.
    Paused,
    /// Ready: the operator cannot read the object (a field its version does not
    /// understand); it leaves the object's bindings as they are until it can.
    Unreadable,
    /// ClaimCarriesGroup: ID tokens of the authorization server carry the group.
    ClaimCarriesGroup,
    /// ClaimCarriesGroup: no active ID-token GROUPS claim of the apiserver's claim name.
    ClaimMissing,
    /// ClaimCarriesGroup: the claim is not always included in ID tokens.
    ClaimNotInIdTokens,
    /// ClaimCarriesGroup: the claim is issued only for scopes kubectl does not request.
    ClaimScopeNotRequested,
    /// ClaimCarriesGroup: the claim's filter leaves the group out.
    ClaimFilterExcludesGroup,
    /// ClaimCarriesGroup: the claim's filter is a regular expression the operator cannot
    /// evaluate.
    ClaimFilterUnreadable,
    /// Active: between `spec.startTime` and `spec.endTime`; the bindings exist.
    Active,
    /// Active, BindingsApplied and Ready: `spec.startTime` is still ahead; no bindings yet.
    NotYetActive,
    /// Active, BindingsApplied and Ready: `spec.endTime` has passed; the bindings are gone.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_reason_is_listed_once_under_its_own_name() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(Reason::GroupMissing.as_str(), "GroupMissing");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
