<?php
/*
 * The users SimpleSAMLphp's login form knows, with the attributes Entree sends (by their
 * plain names; the sp-remote entries map them to urn:oid / urn:mace names where a test asks).
 */
$config = [
    'entree-users' => [
        'exampleauth:UserPass',
        'student:student-pass' => [
            'uid' => ['100231'],
            'nlEduPersonRealId' => ['100231@school-a.nl'],
            'nlEduPersonHomeOrganizationId' => ['99XX'],
            'nlEduPersonHomeOrganization' => ['School A'],
            'eduPersonAffiliation' => ['student', 'member'],
            'givenName' => ['Sanne'],
            'sn' => ['de Vries'],
            'mail' => ['sanne@school-a.nl'],
            'eckId' => ['https://ketenid.nl/201703/aabbccdd'],
        ],
        'teacher:teacher-pass' => [
            'uid' => ['t-778'],
            'nlEduPersonRealId' => ['t-778@school-a.nl'],
            'nlEduPersonHomeOrganizationId' => ['99XX'],
            'eduPersonAffiliation' => ['employee', 'member'],
            'givenName' => ['Joris'],
        ],
    ],
];
