//! Whether two federated ids linked to one person code are the same kind of person. A person
//! code may rightly have several federated ids (a student who moved schools, a second
//! account), but a teacher who links himself to a student's account gets that student's
//! data: the support desk wants to hear of it, and an app may refuse it.

/// The kind of person an assertion's `eduPersonAffiliation` values name: `employee` for a
/// teacher or staff (whatever else they are), `student` for a student, none when it says
/// neither (only `member`, or nothing).
pub fn affiliation_class(affiliations: &[String]) -> Option<&'static str> {
    let has = |names: &[&str]| {
        affiliations
            .iter()
            .any(|a| names.contains(&a.trim().to_ascii_lowercase().as_str()))
    };
    if has(&["employee", "staff", "faculty"]) {
        Some("employee")
    } else if has(&["student"]) {
        Some("student")
    } else {
        None
    }
}

/// Whether linking an id of `class` to a person code already linked to ids of `others`
/// mixes kinds of person. Unknown kinds mix with nothing: only a known difference counts.
pub fn mixes(class: Option<&str>, others: &[Option<String>]) -> bool {
    let Some(class) = class else {
        return false;
    };
    others.iter().flatten().any(|other| other != class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kinds_of_person() {
        assert_eq!(affiliation_class(&v(&["student", "member"])), Some("student"));
        assert_eq!(affiliation_class(&v(&["employee", "member"])), Some("employee"));
        assert_eq!(affiliation_class(&v(&["Staff"])), Some("employee"));
        assert_eq!(affiliation_class(&v(&["student", "employee"])), Some("employee"));
        assert_eq!(affiliation_class(&v(&["member"])), None);
        assert_eq!(affiliation_class(&[]), None);
    }

    #[test]
    fn only_a_known_difference_mixes() {
        let student = Some("student".to_string());
        assert!(mixes(Some("employee"), std::slice::from_ref(&student)));
        assert!(!mixes(Some("student"), &[student.clone(), None]));
        assert!(!mixes(None, &[student]));
        assert!(!mixes(Some("employee"), &[None]));
        assert!(!mixes(Some("employee"), &[]));
    }
}
